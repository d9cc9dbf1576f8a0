//! Routing rules: the ordered `[[routes]]` table (Alertmanager's model) and
//! the [`Router`] that evaluates it.
//!
//! Rules are checked in order; the first that matches decides, unless it says
//! `continue = true`, in which case evaluation goes on and later matches add
//! their destinations too. A destination reached twice is delivered once (the
//! first rule that reached it is the one reported). An event no rule matches
//! goes to the configured `unmatched` destination and the decision says so,
//! so nothing is dropped silently.
//!
//! Rules are compiled once in [`Router::new`], which reports every bad rule at
//! once. Routing itself allocates only the returned decision: the category and
//! severity conditions are bit masks and the common glob shapes (`exact`,
//! `prefix*`, `*suffix`, `*`) are plain string comparisons; only the rest go
//! through a compiled `globset` matcher.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::destination::Destination;
use crate::event::{Category, Event, Severity};

/// The reserved name of the pseudo-rule that catches events no rule matches.
pub const UNMATCHED: &str = "unmatched";

/// One `[[routes]]` table as written in configuration.
///
/// ```toml
/// [[routes]]
/// name = "critical-alerts"
/// match = { category = "alert", severity = "critical" }
/// to = ["telegram:operator"]
/// continue = true
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Missing or empty: the rule matches every event (a catch-all).
    #[serde(rename = "match", default)]
    pub r#match: Matcher,
    pub to: Vec<Destination>,
    /// `true`: after this rule matches, keep evaluating the rules below it.
    #[serde(rename = "continue", default)]
    pub r#continue: bool,
}

/// The conditions of one rule. Every condition given must hold; a condition
/// left out matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// One category or a list (any of them).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "one_or_many",
        serialize_with = "ser_one_or_many"
    )]
    pub category: Option<Vec<Category>>,
    /// One severity or a list (any of them).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "one_or_many",
        serialize_with = "ser_one_or_many"
    )]
    pub severity: Option<Vec<Severity>>,
    /// A glob over the event's `source`, e.g. `worker:*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A glob over the event's `event_type`, e.g. `ops.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Each key must be present on the event with exactly this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Accepts `x` or `[x, y]`. A hand-written visitor rather than an untagged
/// enum, so a bad element reports the element's own error ("unknown severity
/// ...") instead of "data did not match any variant".
fn one_or_many<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            T::deserialize(serde::de::value::StrDeserializer::<E>::new(s)).map(|t| vec![t])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(t) = seq.next_element()? {
                out.push(t);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V(PhantomData)).map(Some)
}

fn ser_one_or_many<S: Serializer, T: Serialize>(
    v: &Option<Vec<T>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v.as_deref() {
        Some([one]) => one.serialize(s),
        Some(many) => many.serialize(s),
        None => s.serialize_none(),
    }
}

impl Matcher {
    /// The conditions as people read them: `category=alert, severity=critical`.
    pub fn describe(&self) -> String {
        fn list<T: fmt::Display>(items: &[T]) -> String {
            match items {
                [one] => one.to_string(),
                many => format!(
                    "[{}]",
                    many.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("|")
                ),
            }
        }
        let mut parts = Vec::new();
        if let Some(c) = &self.category {
            parts.push(format!("category={}", list(c)));
        }
        if let Some(s) = &self.severity {
            parts.push(format!("severity={}", list(s)));
        }
        if let Some(g) = &self.source {
            parts.push(format!("source={g}"));
        }
        if let Some(g) = &self.event_type {
            parts.push(format!("event_type={g}"));
        }
        for (k, v) in &self.labels {
            parts.push(format!("labels.{k}={v}"));
        }
        if parts.is_empty() {
            "any event".to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl RuleSpec {
    /// The rule's name as reported: its `name`, or `rule-N` (1-based) when unnamed.
    pub fn display_name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("rule-{}", index + 1))
    }

    /// The seed-002 routing table (DESIGN.md 3.4): one Discord channel per
    /// ambient category, critical alerts also to Telegram, and anything a
    /// human must answer to Telegram only.
    pub fn defaults() -> Vec<RuleSpec> {
        fn rule(
            name: &str,
            category: Category,
            severity: Option<Severity>,
            to: &str,
            cont: bool,
        ) -> RuleSpec {
            RuleSpec {
                name: Some(name.to_string()),
                r#match: Matcher {
                    category: Some(vec![category]),
                    severity: severity.map(|s| vec![s]),
                    ..Matcher::default()
                },
                to: vec![to.parse().expect("default destinations are valid")],
                r#continue: cont,
            }
        }
        vec![
            // First and final: nothing a human must answer may end up only in an ambient channel.
            rule(
                "action-required",
                Category::ActionRequired,
                None,
                "telegram:operator",
                false,
            ),
            rule(
                "critical-alerts",
                Category::Alert,
                Some(Severity::Critical),
                "telegram:operator",
                true,
            ),
            rule("alerts", Category::Alert, None, "discord:alerts", false),
            rule(
                "briefings",
                Category::Briefing,
                None,
                "discord:briefings",
                false,
            ),
            rule(
                "sub-agent-results",
                Category::SubagentResult,
                None,
                "discord:sub-agent-results",
                false,
            ),
            rule("system", Category::System, None, "discord:system", false),
            rule(
                "memory-updates",
                Category::MemoryUpdate,
                None,
                "discord:memory-updates",
                false,
            ),
            rule("chat", Category::Chat, None, "discord:chat", false),
        ]
    }
}

/// What is wrong with one rule. [`Router::new`] returns all of them at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule #{} `{}`: {problem}", .index + 1, .name.as_deref().unwrap_or("(unnamed)"))]
pub struct RuleError {
    /// 0-based position in the list; shown 1-based (`#N` is the Nth `[[routes]]` table).
    pub index: usize,
    pub name: Option<String>,
    pub problem: RuleProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    #[error("`to` is empty: name at least one destination, such as \"discord:alerts\"")]
    NoDestination,
    #[error(
        "`match.{field}` is {pattern:?}, which is not a valid glob ({reason}): use `*`, `?`, `[abc]` or `{{a,b}}`"
    )]
    BadGlob {
        field: &'static str,
        pattern: String,
        reason: String,
    },
    #[error(
        "`match.{field}` is an empty list, which matches nothing: leave the key out to match any {field}"
    )]
    EmptyList { field: &'static str },
    #[error(
        "`match.category` names {0:?}, which is not a category: use briefing, alert, subagent_result, system, memory_update, chat or action_required"
    )]
    UnknownCategory(String),
    #[error("`match.labels` has an empty key: write labels as `{{ team = \"ops\" }}`")]
    EmptyLabelKey,
    #[error("the name {0:?} is reserved for events no rule matches: choose another")]
    ReservedName(String),
    #[error("the name {name:?} is already used by rule #{}: rule names must be unique", .first_index + 1)]
    DuplicateName { name: String, first_index: usize },
    #[error("`name` is empty: leave it out or give a short name such as \"critical-alerts\"")]
    EmptyName,
}

/// The fields of an event that routing looks at, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    pub category: &'a Category,
    pub severity: Severity,
    pub source: &'a str,
    pub event_type: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl<'a> RouteInput<'a> {
    /// An input without labels (what `switchyard route` asks about).
    pub fn new(
        category: &'a Category,
        severity: Severity,
        source: &'a str,
        event_type: &'a str,
    ) -> Self {
        RouteInput {
            category,
            severity,
            source,
            event_type,
            labels: &NO_LABELS,
        }
    }
    pub fn with_labels(self, labels: &'a BTreeMap<String, String>) -> Self {
        RouteInput { labels, ..self }
    }
}

impl<'a> From<&'a Event> for RouteInput<'a> {
    fn from(ev: &'a Event) -> Self {
        RouteInput {
            category: &ev.category,
            severity: ev.severity,
            source: &ev.source,
            event_type: &ev.event_type,
            labels: &ev.labels,
        }
    }
}

/// Which rule sent an event somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    /// 0-based position in the rule list; for `unmatched`, the number of rules.
    pub index: usize,
    pub name: String,
    /// The rule's conditions as people read them (`category=alert, severity=critical`).
    #[serde(
        serialize_with = "ser_arc_str",
        deserialize_with = "de_arc_str",
        default = "empty_arc_str"
    )]
    pub conditions: Arc<str>,
}

fn ser_arc_str<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}
fn de_arc_str<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    String::deserialize(d).map(Arc::from)
}
fn empty_arc_str() -> Arc<str> {
    Arc::from("")
}

impl RuleRef {
    pub fn is_unmatched(&self) -> bool {
        self.name == UNMATCHED
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unmatched() {
            write!(f, "`{UNMATCHED}` (no rule matched)")
        } else {
            write!(
                f,
                "rule #{} `{}` ({})",
                self.index + 1,
                self.name,
                self.conditions
            )
        }
    }
}

/// One place an event goes, and the rule that sent it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub destination: Destination,
    pub rule: RuleRef,
}

/// Where an event goes. Never empty: with no matching rule it holds one
/// target, the `unmatched` destination, and `unmatched` is true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub targets: Vec<Target>,
    pub unmatched: bool,
}

impl Decision {
    /// One line per target, e.g.
    /// "rule #3 `critical-alerts` (category=alert, severity=critical) → telegram:operator".
    pub fn explain(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|t| format!("{} → {}", t.rule, t.destination))
            .collect()
    }
    pub fn destinations(&self) -> impl Iterator<Item = &Destination> {
        self.targets.iter().map(|t| &t.destination)
    }
}

/// A compiled glob. The shapes that cover nearly every real rule are plain
/// string operations (identical in meaning to globset's default options,
/// where `*` matches any run of characters); the rest use globset.
#[derive(Debug, Clone)]
enum Pattern {
    Any,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Glob(Box<GlobMatcher>),
}

const GLOB_META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

impl Pattern {
    fn compile(pattern: &str) -> Result<Pattern, globset::Error> {
        // Compile every pattern, fast path or not, so a bad one is always reported.
        let glob = Glob::new(pattern)?;
        let plain = |s: &str| !s.contains(GLOB_META);
        Ok(
            if pattern.chars().all(|c| c == '*') && !pattern.is_empty() {
                Pattern::Any
            } else if plain(pattern) {
                Pattern::Exact(pattern.into())
            } else if let Some(p) = pattern.strip_suffix('*').filter(|p| plain(p)) {
                Pattern::Prefix(p.into())
            } else if let Some(s) = pattern.strip_prefix('*').filter(|s| plain(s)) {
                Pattern::Suffix(s.into())
            } else {
                Pattern::Glob(Box::new(glob.compile_matcher()))
            },
        )
    }

    fn is_costly(&self) -> bool {
        matches!(self, Pattern::Glob(_))
    }

    #[inline]
    fn is_match(&self, s: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => s == &**e,
            Pattern::Prefix(p) => s.starts_with(&**p),
            Pattern::Suffix(x) => s.ends_with(&**x),
            Pattern::Glob(g) => g.is_match(s),
        }
    }
}

/// Bit of a category in a rule's category mask. Unknown categories share the
/// top bit, which no rule can name (they are rejected), so only a rule without
/// a category condition matches them.
#[inline]
fn category_bit(c: &Category) -> u8 {
    match c {
        Category::Briefing => 1,
        Category::Alert => 1 << 1,
        Category::SubagentResult => 1 << 2,
        Category::System => 1 << 3,
        Category::MemoryUpdate => 1 << 4,
        Category::Chat => 1 << 5,
        Category::ActionRequired => 1 << 6,
        Category::Other(_) => 1 << 7,
    }
}

#[inline]
fn severity_bit(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Warning => 1 << 1,
        Severity::Critical => 1 << 2,
    }
}

/// 8 category bits × 3 severities.
const CLASSES: usize = 24;

#[inline]
fn class_of(c: &Category, s: Severity) -> usize {
    category_bit(c).trailing_zeros() as usize * 3 + severity_bit(s).trailing_zeros() as usize
}

#[derive(Debug, Clone)]
struct CompiledRule {
    categories: u8,
    severities: u8,
    source: Pattern,
    event_type: Pattern,
    labels: Box<[(String, String)]>,
    to: Box<[Destination]>,
    r#continue: bool,
    rule: RuleRef,
}

impl CompiledRule {
    /// The whole condition, without the class index (tests hold the index against it).
    #[cfg(test)]
    fn matches(&self, input: &RouteInput) -> bool {
        self.categories & category_bit(input.category) != 0
            && self.severities & severity_bit(input.severity) != 0
            && self.matches_rest(input)
    }

    /// Everything but category and severity, which the class index already settled.
    #[inline]
    fn matches_rest(&self, input: &RouteInput) -> bool {
        self.labels
            .iter()
            .all(|(k, v)| input.labels.get(k) == Some(v))
            && if self.event_type.is_costly() {
                // A string comparison that fails spares the regex.
                self.source.is_match(input.source) && self.event_type.is_match(input.event_type)
            } else {
                self.event_type.is_match(input.event_type) && self.source.is_match(input.source)
            }
    }
}

/// The compiled routing table. Cheap to share (`&Router` is all `route` needs).
#[derive(Debug, Clone)]
pub struct Router {
    rules: Vec<CompiledRule>,
    /// For each (category, severity) class, the rules whose category and
    /// severity conditions admit it, in order: routing only looks at those.
    by_class: Vec<Box<[u32]>>,
    specs: Vec<RuleSpec>,
    unmatched: Target,
}

impl Router {
    /// Compile the rules; on failure, every problem of every rule.
    pub fn new(rules: Vec<RuleSpec>, unmatched: Destination) -> Result<Router, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut compiled = Vec::with_capacity(rules.len());
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for (index, spec) in rules.iter().enumerate() {
            let mut problem = |problem| {
                errors.push(RuleError {
                    index,
                    name: spec.name.clone(),
                    problem,
                })
            };
            match spec.name.as_deref() {
                Some(n) if n.trim().is_empty() => problem(RuleProblem::EmptyName),
                Some(UNMATCHED) => problem(RuleProblem::ReservedName(UNMATCHED.into())),
                _ => {}
            }
            let name = spec.display_name(index);
            if let Some(&first_index) = names.get(&name) {
                problem(RuleProblem::DuplicateName {
                    name: name.clone(),
                    first_index,
                });
            } else {
                names.insert(name.clone(), index);
            }
            if spec.to.is_empty() {
                problem(RuleProblem::NoDestination);
            }
            let m = &spec.r#match;
            let mut categories = u8::MAX;
            if let Some(list) = &m.category {
                if list.is_empty() {
                    problem(RuleProblem::EmptyList { field: "category" });
                }
                categories = 0;
                for c in list {
                    if c.is_known() {
                        categories |= category_bit(c);
                    } else {
                        problem(RuleProblem::UnknownCategory(c.to_string()));
                    }
                }
            }
            let mut severities = u8::MAX;
            if let Some(list) = &m.severity {
                if list.is_empty() {
                    problem(RuleProblem::EmptyList { field: "severity" });
                }
                severities = list.iter().fold(0, |acc, s| acc | severity_bit(*s));
            }
            let mut glob = |field: &'static str, pattern: &Option<String>| match pattern {
                None => Pattern::Any,
                Some(p) => Pattern::compile(p).unwrap_or_else(|e| {
                    let reason = e.kind().to_string();
                    problem(RuleProblem::BadGlob {
                        field,
                        pattern: p.clone(),
                        reason,
                    });
                    Pattern::Any
                }),
            };
            let source = glob("source", &m.source);
            let event_type = glob("event_type", &m.event_type);
            if m.labels.keys().any(|k| k.trim().is_empty()) {
                problem(RuleProblem::EmptyLabelKey);
            }
            compiled.push(CompiledRule {
                categories,
                severities,
                source,
                event_type,
                labels: m
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                to: spec.to.clone().into_boxed_slice(),
                r#continue: spec.r#continue,
                rule: RuleRef {
                    index,
                    name,
                    conditions: Arc::from(m.describe()),
                },
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let unmatched = Target {
            destination: unmatched,
            rule: RuleRef {
                index: rules.len(),
                name: UNMATCHED.into(),
                conditions: Arc::from("no rule matched"),
            },
        };
        let by_class = (0..CLASSES)
            .map(|class| {
                let (cat, sev) = ((class / 3) as u32, (class % 3) as u32);
                (0u32..)
                    .zip(&compiled)
                    .filter(|(_, r)| {
                        r.categories & (1 << cat) != 0 && r.severities & (1 << sev) != 0
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        Ok(Router {
            rules: compiled,
            by_class,
            specs: rules,
            unmatched,
        })
    }

    /// The seed-002 defaults with the given `unmatched` destination.
    pub fn with_defaults(unmatched: Destination) -> Router {
        Router::new(RuleSpec::defaults(), unmatched).expect("the default rules are valid")
    }

    /// Where an event goes, and which rules say so.
    pub fn route(&self, input: &RouteInput) -> Decision {
        let mut targets: Vec<Target> = Vec::new();
        let class = class_of(input.category, input.severity);
        for &i in self.by_class[class].iter() {
            let rule = &self.rules[i as usize];
            if !rule.matches_rest(input) {
                continue;
            }
            for dest in rule.to.iter() {
                if !targets.iter().any(|t| &t.destination == dest) {
                    targets.push(Target {
                        destination: dest.clone(),
                        rule: rule.rule.clone(),
                    });
                }
            }
            if !rule.r#continue {
                break;
            }
        }
        if targets.is_empty() {
            Decision {
                targets: vec![self.unmatched.clone()],
                unmatched: true,
            }
        } else {
            Decision {
                targets,
                unmatched: false,
            }
        }
    }

    /// The rules as given (for `switchyard route` listings and config checks).
    pub fn rules(&self) -> &[RuleSpec] {
        &self.specs
    }

    pub fn unmatched_destination(&self) -> &Destination {
        &self.unmatched.destination
    }

    /// Every destination any rule (or `unmatched`) can send to, once each.
    pub fn destinations(&self) -> Vec<&Destination> {
        let mut all: Vec<&Destination> = self.rules.iter().flat_map(|r| r.to.iter()).collect();
        all.push(&self.unmatched.destination);
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Destination {
        s.parse().unwrap()
    }

    fn rules_from_toml(text: &str) -> Vec<RuleSpec> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            routes: Vec<RuleSpec>,
        }
        toml::from_str::<File>(text).unwrap().routes
    }

    struct Case {
        category: &'static str,
        severity: Severity,
        source: &'static str,
        event_type: &'static str,
        labels: &'static [(&'static str, &'static str)],
        want: &'static [(&'static str, &'static str)],
    }

    fn run(router: &Router, cases: &[Case]) {
        for (i, c) in cases.iter().enumerate() {
            let category: Category = c.category.parse().unwrap();
            let labels: BTreeMap<String, String> = c
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let input =
                RouteInput::new(&category, c.severity, c.source, c.event_type).with_labels(&labels);
            let decision = router.route(&input);
            let got: Vec<(String, String)> = decision
                .targets
                .iter()
                .map(|t| (t.destination.to_string(), t.rule.name.clone()))
                .collect();
            let want: Vec<(String, String)> = c
                .want
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            assert_eq!(
                got, want,
                "case {i}: {} {} {} {}",
                c.category, c.severity, c.source, c.event_type
            );
            assert_eq!(
                decision.unmatched,
                want == [("discord:system".into(), UNMATCHED.into())],
                "case {i}"
            );
        }
    }

    const TABLE: &str = r#"
        [[routes]]
        name = "action"
        match = { category = "action_required" }
        to = ["telegram:operator"]

        [[routes]]
        name = "crit"
        match = { category = "alert", severity = "critical" }
        to = ["telegram:operator", "discord:alerts"]
        continue = true

        [[routes]]
        name = "page-team"
        match = { labels = { team = "payments", env = "prod" } }
        to = ["discord:payments"]
        continue = true

        [[routes]]
        name = "alerts"
        match = { category = ["alert", "system"], severity = ["warning", "critical"] }
        to = ["discord:alerts"]

        [[routes]]
        name = "ops-workers"
        match = { source = "worker:*", event_type = "ops.*" }
        to = ["discord:ops"]

        [[routes]]
        name = "heartbeats"
        match = { event_type = "*.heartbeat" }
        to = ["discord:heartbeats"]

        [[routes]]
        name = "deploys"
        match = { event_type = "deploy.{start,finish}", source = "ci-?" }
        to = ["discord:deploys"]

        [[routes]]
        match = { category = "briefing" }
        to = ["discord:briefings"]
    "#;

    #[test]
    fn precedence_continue_globs_labels_unmatched_and_dedup() {
        let router = Router::new(rules_from_toml(TABLE), d("discord:system")).unwrap();
        use Severity::*;
        let none: &[(&str, &str)] = &[];
        run(
            &router,
            &[
                // first match wins: action_required never reaches later rules
                Case {
                    category: "action_required",
                    severity: Critical,
                    source: "worker:x",
                    event_type: "ops.x",
                    labels: none,
                    want: &[("telegram:operator", "action")],
                },
                // continue: crit goes on to `alerts`, whose discord:alerts is already reached (delivered once)
                Case {
                    category: "alert",
                    severity: Critical,
                    source: "m",
                    event_type: "e",
                    labels: none,
                    want: &[("telegram:operator", "crit"), ("discord:alerts", "crit")],
                },
                // continue through a label rule, then stop at `alerts`
                Case {
                    category: "alert",
                    severity: Critical,
                    source: "m",
                    event_type: "e",
                    labels: &[("team", "payments"), ("env", "prod"), ("x", "y")],
                    want: &[
                        ("telegram:operator", "crit"),
                        ("discord:alerts", "crit"),
                        ("discord:payments", "page-team"),
                    ],
                },
                // labels must all match exactly
                Case {
                    category: "chat",
                    severity: Info,
                    source: "m",
                    event_type: "e",
                    labels: &[("team", "payments"), ("env", "staging")],
                    want: &[("discord:system", UNMATCHED)],
                },
                // category list + severity list
                Case {
                    category: "system",
                    severity: Warning,
                    source: "m",
                    event_type: "e",
                    labels: none,
                    want: &[("discord:alerts", "alerts")],
                },
                Case {
                    category: "alert",
                    severity: Info,
                    source: "worker:opsclaw",
                    event_type: "ops.invoice",
                    labels: none,
                    want: &[("discord:ops", "ops-workers")],
                },
                // both globs must match
                Case {
                    category: "chat",
                    severity: Info,
                    source: "cron",
                    event_type: "ops.invoice",
                    labels: none,
                    want: &[("discord:system", UNMATCHED)],
                },
                Case {
                    category: "system",
                    severity: Info,
                    source: "cron",
                    event_type: "system.heartbeat",
                    labels: none,
                    want: &[("discord:heartbeats", "heartbeats")],
                },
                // brace alternation and `?` go through globset
                Case {
                    category: "chat",
                    severity: Info,
                    source: "ci-1",
                    event_type: "deploy.finish",
                    labels: none,
                    want: &[("discord:deploys", "deploys")],
                },
                Case {
                    category: "chat",
                    severity: Info,
                    source: "ci-12",
                    event_type: "deploy.finish",
                    labels: none,
                    want: &[("discord:system", UNMATCHED)],
                },
                // unnamed rules are called by their position
                Case {
                    category: "briefing",
                    severity: Info,
                    source: "m",
                    event_type: "e",
                    labels: none,
                    want: &[("discord:briefings", "rule-8")],
                },
                // an unknown category is only matched by rules without a category condition
                Case {
                    category: "weird",
                    severity: Critical,
                    source: "m",
                    event_type: "e",
                    labels: none,
                    want: &[("discord:system", UNMATCHED)],
                },
                Case {
                    category: "weird",
                    severity: Info,
                    source: "worker:a",
                    event_type: "ops.b",
                    labels: none,
                    want: &[("discord:ops", "ops-workers")],
                },
            ],
        );
    }

    #[test]
    fn defaults_follow_seed_002() {
        let router = Router::with_defaults(d("discord:system"));
        use Severity::*;
        let none: &[(&str, &str)] = &[];
        let c = |category, severity, want| Case {
            category,
            severity,
            source: "s",
            event_type: "t",
            labels: none,
            want,
        };
        run(
            &router,
            &[
                c("briefing", Info, &[("discord:briefings", "briefings")]),
                c("alert", Warning, &[("discord:alerts", "alerts")]),
                c(
                    "alert",
                    Critical,
                    &[
                        ("telegram:operator", "critical-alerts"),
                        ("discord:alerts", "alerts"),
                    ],
                ),
                c(
                    "subagent_result",
                    Info,
                    &[("discord:sub-agent-results", "sub-agent-results")],
                ),
                c("system", Critical, &[("discord:system", "system")]),
                c(
                    "memory_update",
                    Info,
                    &[("discord:memory-updates", "memory-updates")],
                ),
                c("chat", Info, &[("discord:chat", "chat")]),
                c(
                    "action_required",
                    Info,
                    &[("telegram:operator", "action-required")],
                ),
                c(
                    "action_required",
                    Critical,
                    &[("telegram:operator", "action-required")],
                ),
                c("nonsense", Info, &[("discord:system", UNMATCHED)]),
            ],
        );
    }

    #[test]
    fn explain_names_rule_conditions_and_destination() {
        let router = Router::with_defaults(d("discord:system"));
        let cat = Category::Alert;
        let decision = router.route(&RouteInput::new(&cat, Severity::Critical, "m", "e"));
        assert_eq!(
            decision.explain(),
            [
                "rule #2 `critical-alerts` (category=alert, severity=critical) → telegram:operator",
                "rule #3 `alerts` (category=alert) → discord:alerts",
            ]
        );
        let cat = Category::Other("x".into());
        let decision = router.route(&RouteInput::new(&cat, Severity::Info, "m", "e"));
        assert!(decision.unmatched);
        assert_eq!(decision.targets[0].rule.index, 8);
        assert_eq!(
            decision.explain(),
            ["`unmatched` (no rule matched) → discord:system"]
        );
    }

    #[test]
    fn from_event_uses_its_fields() {
        let ev: Event = serde_json::from_value(serde_json::json!({
            "event_id": "e1", "event_type": "ops.x", "category": "alert", "severity": "critical",
            "source": "worker:a", "timestamp": "2026-11-21T10:15:00Z", "title": "t", "labels": {"team": "payments", "env": "prod"}
        }))
        .unwrap();
        let router = Router::new(rules_from_toml(TABLE), d("discord:system")).unwrap();
        let got: Vec<String> = router
            .route(&RouteInput::from(&ev))
            .destinations()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            got,
            ["telegram:operator", "discord:alerts", "discord:payments"]
        );
    }

    #[test]
    fn every_bad_rule_is_reported_at_once() {
        let rules = rules_from_toml(
            r#"
            [[routes]]
            name = "ok"
            match = { category = "alert" }
            to = ["discord:alerts"]

            [[routes]]
            name = "bad-glob"
            match = { event_type = "ops.[", source = "a{b" }
            to = ["discord:x"]

            [[routes]]
            match = { category = ["alerts"], severity = [] }
            to = []

            [[routes]]
            name = "unmatched"
            to = ["discord:x"]

            [[routes]]
            name = "ok"
            match = { labels = { "" = "x" } }
            to = ["discord:x"]
        "#,
        );
        let errors = Router::new(rules, d("discord:system")).unwrap_err();
        let got: Vec<(usize, String)> = errors
            .iter()
            .map(|e| (e.index, format!("{:?}", e.problem)))
            .collect();
        let kinds: Vec<(usize, &str)> = got
            .iter()
            .map(|(i, p)| (*i, p.split([' ', '(', '{']).next().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                (1, "BadGlob"),
                (1, "BadGlob"),
                (2, "NoDestination"),
                (2, "UnknownCategory"),
                (2, "EmptyList"),
                (3, "ReservedName"),
                (4, "DuplicateName"),
                (4, "EmptyLabelKey"),
            ],
            "{errors:#?}"
        );
        let text = errors[0].to_string();
        assert!(
            text.starts_with(
                "rule #2 `bad-glob`: `match.source` is \"a{b\", which is not a valid glob"
            ),
            "{text}"
        );
        assert!(
            errors[1]
                .to_string()
                .contains("`match.event_type` is \"ops.[\""),
            "{}",
            errors[1]
        );
        assert!(
            errors[3]
                .to_string()
                .contains("\"alerts\", which is not a category"),
            "{}",
            errors[3]
        );
        assert!(
            errors[6].to_string().contains("already used by rule #1"),
            "{}",
            errors[6]
        );
    }

    #[test]
    fn config_shape_rejects_unknown_keys_and_bad_values() {
        for (text, needle) in [
            (
                "[[routes]]\nto = [\"discord:a\"]\nmatch = { categroy = \"alert\" }",
                "unknown field `categroy`",
            ),
            (
                "[[routes]]\nto = [\"discord:a\"]\ncontinu = true",
                "unknown field `continu`",
            ),
            ("[[routes]]\nto = [\"slack:a\"]", "unknown platform"),
            (
                "[[routes]]\nto = [\"discord:a\"]\nmatch = { severity = \"loud\" }",
                "unknown variant `loud`",
            ),
            (
                "[[routes]]\nto = [\"discord:a\"]\nmatch = { severity = [\"info\", \"loud\"] }",
                "unknown variant `loud`",
            ),
        ] {
            #[derive(Debug, Deserialize)]
            #[allow(dead_code)]
            struct File {
                routes: Vec<RuleSpec>,
            }
            let err = toml::from_str::<File>(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn rule_spec_round_trips_through_toml_and_json() {
        let specs = rules_from_toml(TABLE);
        assert_eq!(
            specs[3].r#match.category,
            Some(vec![Category::Alert, Category::System])
        );
        assert!(specs[1].r#continue && !specs[0].r#continue);
        #[derive(Serialize, Deserialize)]
        struct File {
            routes: Vec<RuleSpec>,
        }
        let text = toml::to_string(&File {
            routes: specs.clone(),
        })
        .unwrap();
        assert_eq!(toml::from_str::<File>(&text).unwrap().routes, specs);
        let json = serde_json::to_string(&specs).unwrap();
        assert_eq!(serde_json::from_str::<Vec<RuleSpec>>(&json).unwrap(), specs);
        let defaults = RuleSpec::defaults();
        let text = toml::to_string(&File {
            routes: defaults.clone(),
        })
        .unwrap();
        assert_eq!(toml::from_str::<File>(&text).unwrap().routes, defaults);
    }

    #[test]
    fn fast_glob_paths_agree_with_globset() {
        let patterns = [
            "*",
            "**",
            "ops.*",
            "*.heartbeat",
            "worker:opsclaw",
            "*",
            "ops*x",
            "",
            "a/*",
            "*/b",
        ];
        let inputs = [
            "",
            "ops.",
            "ops.x",
            "ops",
            "x.heartbeat",
            ".heartbeat",
            "worker:opsclaw",
            "a/b/c",
            "x/b",
            "opsx",
        ];
        for p in patterns {
            let fast = Pattern::compile(p).unwrap();
            let slow = Glob::new(p).unwrap().compile_matcher();
            for s in inputs {
                assert_eq!(
                    fast.is_match(s),
                    slow.is_match(s),
                    "pattern {p:?} on {s:?} ({fast:?})"
                );
            }
        }
    }

    #[test]
    fn router_and_decision_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Router>();
        shareable::<Decision>();
        shareable::<RuleError>();
    }

    #[test]
    fn class_index_agrees_with_a_full_scan() {
        let router = Router::new(rules_from_toml(TABLE), d("discord:system")).unwrap();
        let labels = BTreeMap::from([
            ("team".to_string(), "payments".to_string()),
            ("env".into(), "prod".into()),
        ]);
        let mut categories = Category::KNOWN.to_vec();
        categories.push(Category::Other("weird".into()));
        for c in &categories {
            for s in Severity::ALL {
                for (src, ty) in [
                    ("worker:a", "ops.x"),
                    ("ci-1", "deploy.start"),
                    ("m", "a.heartbeat"),
                ] {
                    let input = RouteInput::new(c, s, src, ty).with_labels(&labels);
                    let indexed: Vec<usize> = router.by_class[class_of(c, s)]
                        .iter()
                        .map(|&i| i as usize)
                        .filter(|&i| router.rules[i].matches_rest(&input))
                        .collect();
                    let scanned: Vec<usize> = (0..router.rules.len())
                        .filter(|&i| router.rules[i].matches(&input))
                        .collect();
                    assert_eq!(indexed, scanned, "{c} {s} {src} {ty}");
                }
            }
        }
    }

    #[test]
    fn a_rule_with_several_destinations_and_a_catch_all() {
        let rules = rules_from_toml(
            r#"
            [[routes]]
            name = "fan-out"
            match = { source = "ci" }
            to = ["discord:a", "discord:b", "discord:a"]
            continue = true
            [[routes]]
            name = "all"
            to = ["discord:b", "discord:c"]
        "#,
        );
        let router = Router::new(rules, d("discord:system")).unwrap();
        let cat = Category::Chat;
        let got: Vec<String> = router
            .route(&RouteInput::new(&cat, Severity::Info, "ci", "e"))
            .targets
            .iter()
            .map(|t| format!("{}@{}", t.destination, t.rule.name))
            .collect();
        assert_eq!(
            got,
            ["discord:a@fan-out", "discord:b@fan-out", "discord:c@all"]
        );
        let got: Vec<String> = router
            .route(&RouteInput::new(&cat, Severity::Info, "cron", "e"))
            .destinations()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(got, ["discord:b", "discord:c"]);
        assert_eq!(router.destinations().len(), 4);
    }
}
