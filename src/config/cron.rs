//! Five-field cron (`minute hour day month weekday`), checked in the
//! user's own fields and words, then translated for the `cron` crate, whose
//! expressions start with seconds and number the weekdays 1 (Sunday) to 7.
//! Standard cron numbers them 0 (Sunday) to 6, and 7 is Sunday too: a
//! numeric weekday is translated to its name, so `1-5` stays Monday to
//! Friday.

/// One field's name, the values it takes and its names (month, weekday).
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    plural: &'static str,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        plural: "minutes are 0 to 59",
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        plural: "hours are 0 to 23",
    },
    Field {
        name: "day of the month",
        min: 1,
        max: 31,
        names: &[],
        plural: "days of the month are 1 to 31",
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
        plural: "months are 1 to 12 or Jan to Dec",
    },
    Field {
        name: "weekday",
        min: 0,
        max: 7,
        names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
        plural: "weekdays are 0 to 7 (0 and 7 are Sunday) or Sun to Sat",
    },
];

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// A value of a field: a number in range, or one of its names.
fn value(field: &Field, text: &str, expr: &str) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        if n < field.min || n > field.max {
            return Err(format!(
                "{expr:?}: the {} field has {n}; {}",
                field.name, field.plural
            ));
        }
        return Ok(n);
    }
    let lower = text.to_ascii_lowercase();
    match field.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(i as u32 + field.min),
        None => Err(format!(
            "{expr:?}: the {} field has {text:?}, which is not a value; {}",
            field.name, field.plural
        )),
    }
}

/// Check one comma-separated part of a field: `*`, `*/n`, `a`, `a-b`, `a-b/n`.
/// Returns the values it stands for.
fn part(field: &Field, text: &str, expr: &str) -> Result<Vec<u32>, String> {
    let (range, step) = match text.split_once('/') {
        Some((r, s)) => {
            let step = s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!(
                    "{expr:?}: the {} field's step {s:?} is not a whole number above 0",
                    field.name
                )
            })?;
            (r, step)
        }
        None => (text, 1),
    };
    let (from, to) = if range == "*" {
        (field.min, field.max)
    } else if let Some((a, b)) = range.split_once('-') {
        let (a, b) = (value(field, a, expr)?, value(field, b, expr)?);
        if a > b {
            return Err(format!(
                "{expr:?}: the {} field's range {range:?} runs backwards; write the smaller end first",
                field.name
            ));
        }
        (a, b)
    } else {
        let v = value(field, range, expr)?;
        // `a/n` means from a to the end, as in standard cron.
        (v, if step > 1 { field.max } else { v })
    };
    Ok((from..=to).step_by(step as usize).collect())
}

/// The six-field expression the `cron` crate takes for a checked
/// five-field one, or what is wrong in the user's own fields.
pub fn to_crate_form(text: &str) -> Result<String, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "{text:?} has {} field(s): write five, minute hour day month weekday (e.g. \"0 7 * * Mon-Fri\")",
            fields.len()
        ));
    }
    let mut out = vec!["0".to_string()];
    for (field, given) in FIELDS.iter().zip(&fields) {
        let mut days = Vec::new();
        for p in given.split(',') {
            if p.is_empty() {
                return Err(format!(
                    "{text:?}: the {} field has an empty item between commas",
                    field.name
                ));
            }
            days.extend(part(field, p, text)?);
        }
        if field.name == "weekday" && *given != "*" {
            // By name: the crate's numbering is not cron's.
            let mut names: Vec<u32> = days.iter().map(|d| d % 7).collect();
            names.sort_unstable();
            names.dedup();
            out.push(
                names
                    .iter()
                    .map(|d| WEEKDAYS[*d as usize])
                    .collect::<Vec<_>>()
                    .join(","),
            );
        } else {
            out.push((*given).to_string());
        }
    }
    Ok(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_wrong_is_said_in_the_users_own_fields() {
        let e = to_crate_form("0 25 * * Fri").unwrap_err();
        assert_eq!(
            e,
            "\"0 25 * * Fri\": the hour field has 25; hours are 0 to 23"
        );
        assert!(to_crate_form("0 23 * * Fri").is_ok());
        for (bad, says) in [
            ("60 * * * *", "the minute field has 60"),
            ("* * 0 * *", "days of the month are 1 to 31"),
            ("* * * 13 *", "months are 1 to 12 or Jan to Dec"),
            ("* * * * 8", "weekdays are 0 to 7"),
            ("* * * * Funday", "\"Funday\", which is not a value"),
            ("* 5-2 * * *", "runs backwards"),
            ("*/0 * * * *", "not a whole number above 0"),
            ("1,,2 * * * *", "empty item"),
            ("0 7 * *", "has 4 field(s)"),
        ] {
            let e = to_crate_form(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("0 0 "), "no six-field form shown: {e}");
        }
    }

    #[test]
    fn numeric_weekdays_keep_their_cron_meaning() {
        assert_eq!(
            to_crate_form("0 7 * * 1-5").unwrap(),
            "0 0 7 * * Mon,Tue,Wed,Thu,Fri"
        );
        assert_eq!(to_crate_form("0 7 * * 0").unwrap(), "0 0 7 * * Sun");
        assert_eq!(
            to_crate_form("0 7 * * 5-7").unwrap(),
            "0 0 7 * * Sun,Fri,Sat"
        );
        assert_eq!(
            to_crate_form("0 7 * * Mon-Fri").unwrap(),
            "0 0 7 * * Mon,Tue,Wed,Thu,Fri"
        );
        assert_eq!(
            to_crate_form("*/15 9-17 * Jan,Jul *").unwrap(),
            "0 */15 9-17 * Jan,Jul *"
        );
    }
}
