//! Tables for a person: a header row in capitals, then the rows, each
//! column as wide as its widest cell (counted in characters), two spaces
//! between columns, the last column never padded. `--json` is the form for
//! programs; this one is for eyes.

/// A table being built.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let width = |i: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in r.iter().enumerate().take(cols) {
                if i + 1 == cols {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_under_their_headers() {
        let mut t = Table::new(&["id", "target", "reason"]);
        t.row(vec!["mut_1".into(), "system".into(), "deploy".into()]);
        t.row(vec!["mut_22".into(), "discord:alerts ✓".into(), "".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID      TARGET            REASON");
        assert_eq!(lines[1], "mut_1   system            deploy");
        assert_eq!(
            lines[2], "mut_22  discord:alerts ✓",
            "the empty last cell leaves no trailing spaces"
        );
        let col = lines[0].find("TARGET").unwrap();
        assert_eq!(&lines[1][col..col + 6], "system");
    }
}
