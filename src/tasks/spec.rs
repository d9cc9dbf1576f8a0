//! Task specs as seed 004 writes them, plus the optional `repo`, `branch`
//! (seed 001) and `budget`, and the task's lifecycle states.
//!
//! Parsing walks the JSON by hand instead of deriving `Deserialize`, so that a
//! spec with five mistakes gets five reasons back, not the first one serde
//! trips on. The parsed [`TaskSpec`] serializes back to the same shape.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest spec file read at all; past this nothing is parsed.
pub const MAX_SPEC_BYTES: usize = 4 << 20;
/// Largest total size of all steps' args. A task spec is a tiny delegation
/// note (seed 004); anything bigger belongs in a file the step reads.
pub const MAX_ARGS_BYTES: usize = 256 << 10;
pub const MAX_STEPS: usize = 64;
pub const MAX_ID_CHARS: usize = 128;
/// Seed 004's default step time box, in milliseconds.
pub const DEFAULT_STEP_TIMEOUT_MS: u64 = 120_000;

/// A task identifier. It names files in the inbox (`<id>.json`), so it is
/// restricted to letters, digits, `_`, `-` and `.`, not starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String);

impl TaskId {
    pub fn parse(s: &str) -> Result<TaskId, String> {
        if s.is_empty() || s.chars().count() > MAX_ID_CHARS {
            return Err(format!("`id` must be 1 to {MAX_ID_CHARS} characters"));
        }
        if s.starts_with('.')
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(format!(
                "`id` {s:?} may contain only letters, digits, `_`, `-` and `.` and must not start with `.` (it names files)"
            ));
        }
        Ok(TaskId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TaskId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        TaskId::parse(&s)
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? } default $default:ident, field $field:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $(#[doc = $text] $variant,)+
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The seed's default when the field is absent.
            pub const DEFAULT: $name = $name::$default;
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{}` is {other:?}: use one of {}", $field,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

word_enum!(
    /// Seed 004: low/medium/high/urgent, default medium.
    Priority { Low = "low", Medium = "medium", High = "high", Urgent = "urgent" } default Medium, field "priority"
);
word_enum!(
    /// The risk the author declares (seed 004): low/medium/high, default medium.
    Risk { Low = "low", Medium = "medium", High = "high" } default Medium, field "risk"
);

/// One step: which skill (container) runs it, with which args.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub skill: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Milliseconds, as in the seed. `None`: the skill's configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub optional: bool,
}

impl Step {
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout.map(std::time::Duration::from_millis)
    }
}

/// The memory entry recorded when the task succeeds (seed 004).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub kind: String,
    pub text: String,
}

/// Where results are announced (seed 004: "future use"; kept as written).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Notify {
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Whether the result message carries the steps' output as a file.
    #[serde(default, skip_serializing_if = "AttachLog::is_never")]
    pub attach_log: AttachLog,
}

/// When a task's result message carries its output log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachLog {
    #[default]
    Never,
    /// Only when the task did not succeed (a failing test's log).
    OnFailure,
    Always,
}

impl AttachLog {
    pub fn is_never(&self) -> bool {
        *self == AttachLog::Never
    }
}

/// Ceilings on what a task may spend, as workers report it (seed 000's token budget).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// A validated task spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub id: TaskId,
    pub title: String,
    pub priority: Priority,
    pub risk: Risk,
    pub skills: Vec<String>,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acceptance: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// Every problem with a spec, each a sentence naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid task spec: {}", .problems.join("; "))]
pub struct SpecErrors {
    pub problems: Vec<String>,
}

impl SpecErrors {
    fn one(p: impl Into<String>) -> SpecErrors {
        SpecErrors {
            problems: vec![p.into()],
        }
    }
}

const TOP_FIELDS: &[&str] = &[
    "kind",
    "id",
    "title",
    "priority",
    "risk",
    "skills",
    "steps",
    "acceptance",
    "memory",
    "notify",
    "repo",
    "branch",
    "budget",
];
const STEP_FIELDS: &[&str] = &["skill", "args", "timeout", "optional"];

impl TaskSpec {
    /// Parse and check the shape. Skill names are checked against the
    /// configuration by [`TaskSpec::parse_checked`] (or [`TaskSpec::check_skills`]).
    pub fn parse(bytes: &[u8]) -> Result<TaskSpec, SpecErrors> {
        if bytes.len() > MAX_SPEC_BYTES {
            return Err(SpecErrors::one(format!(
                "the spec is {} bytes; at most {MAX_SPEC_BYTES} are read: put large inputs in a file the step reads",
                bytes.len()
            )));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            SpecErrors::one(format!(
                "not valid JSON ({e}): a task spec is one JSON object"
            ))
        })?;
        let Value::Object(obj) = value else {
            return Err(SpecErrors::one(
                "a task spec is a JSON object with `id`, `title`, `skills` and `steps`",
            ));
        };
        Parser::default().spec(obj)
    }

    /// Parse, then check every step's skill against the configured skills,
    /// reporting shape and skill problems together.
    pub fn parse_checked<'a>(
        bytes: &[u8],
        known_skills: impl IntoIterator<Item = &'a str>,
    ) -> Result<TaskSpec, SpecErrors> {
        let spec = TaskSpec::parse(bytes)?;
        spec.check_skills(known_skills)?;
        Ok(spec)
    }

    pub fn check_skills<'a>(
        &self,
        known_skills: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), SpecErrors> {
        let known: BTreeSet<&str> = known_skills.into_iter().collect();
        let mut problems = Vec::new();
        let mut unknown_seen = BTreeSet::new();
        for name in self
            .skills
            .iter()
            .chain(self.steps.iter().map(|s| &s.skill))
        {
            if !known.contains(name.as_str()) && unknown_seen.insert(name.clone()) {
                problems.push(format!(
                    "skill {name:?} is not configured (known: {}): add [skills.{name}] to the configuration or use a known skill",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors { problems })
        }
    }

    /// Total bytes of all steps' args.
    pub fn args_bytes(&self) -> usize {
        self.steps
            .iter()
            .flat_map(|s| &s.args)
            .map(String::len)
            .sum()
    }
}

#[derive(Default)]
struct Parser {
    problems: Vec<String>,
}

impl Parser {
    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    fn string(&mut self, obj: &Map<String, Value>, field: &str, required: bool) -> Option<String> {
        match obj.get(field) {
            None | Some(Value::Null) if required => {
                self.problem(format!("`{field}` is missing"));
                None
            }
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if required && s.trim().is_empty() => {
                self.problem(format!("`{field}` is empty"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(format!("`{field}` must be a string, not {}", kind(other)));
                None
            }
        }
    }

    fn strings(&mut self, value: &Value, field: &str) -> Vec<String> {
        match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        self.problem(format!(
                            "`{field}[{i}]` must be a string, not {}",
                            kind(other)
                        ));
                        None
                    }
                })
                .collect(),
            other => {
                self.problem(format!(
                    "`{field}` must be an array of strings, not {}",
                    kind(other)
                ));
                Vec::new()
            }
        }
    }

    fn word<T: FromStr<Err = String> + Copy>(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        default: T,
    ) -> T {
        match self.string(obj, field, false) {
            None => default,
            Some(s) => s.parse().unwrap_or_else(|e| {
                self.problem(e);
                default
            }),
        }
    }

    fn unknown_fields(&mut self, obj: &Map<String, Value>, known: &[&str], at: &str) {
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            self.problem(format!(
                "unknown field `{at}{key}`: check its spelling (known: {})",
                known.join(", ")
            ));
        }
    }

    fn spec(mut self, obj: Map<String, Value>) -> Result<TaskSpec, SpecErrors> {
        self.unknown_fields(&obj, TOP_FIELDS, "");
        if let Some(kind) = self.string(&obj, "kind", false)
            && kind != "task"
        {
            self.problem(format!(
                "`kind` is {kind:?}: a task spec has kind \"task\" or none"
            ));
        }
        let id = self
            .string(&obj, "id", true)
            .and_then(|s| TaskId::parse(&s).map_err(|e| self.problem(e)).ok());
        let title = self.string(&obj, "title", true).unwrap_or_default();
        let priority = self.word(&obj, "priority", Priority::DEFAULT);
        let risk = self.word(&obj, "risk", Risk::DEFAULT);
        let skills = match obj.get("skills") {
            None | Some(Value::Null) => {
                self.problem("`skills` is missing: list the skills the steps use, like [\"sh\"]");
                Vec::new()
            }
            Some(v) => self.strings(v, "skills"),
        };
        let steps = self.steps(obj.get("steps"), &skills);
        let acceptance = obj
            .get("acceptance")
            .map(|v| self.strings(v, "acceptance"))
            .unwrap_or_default();
        let memory = obj.get("memory").and_then(|v| self.memory(v));
        let notify = obj
            .get("notify")
            .and_then(|v| self.typed::<Notify>(v, "notify"));
        let repo = self.string(&obj, "repo", false);
        if let Some(r) = &repo
            && (r.trim().is_empty() || r.chars().any(char::is_whitespace))
        {
            self.problem(format!(
                "`repo` {r:?} must be a repository name like owner/name"
            ));
        }
        let branch = self.string(&obj, "branch", false);
        if let Some(b) = &branch
            && (b.trim().is_empty() || b.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            self.problem(format!("`branch` {b:?} is not a branch name"));
        }
        let budget = obj.get("budget").and_then(|v| self.budget(v));

        let spec_args: usize = steps
            .iter()
            .flat_map(|s: &Step| &s.args)
            .map(String::len)
            .sum();
        if spec_args > MAX_ARGS_BYTES {
            self.problem(format!(
                "the steps' args total {spec_args} bytes; at most {MAX_ARGS_BYTES} are allowed: put large inputs in a file the step reads"
            ));
        }

        match id {
            Some(id) if self.problems.is_empty() => Ok(TaskSpec {
                id,
                title,
                priority,
                risk,
                skills,
                steps,
                acceptance,
                memory,
                notify,
                repo,
                branch,
                budget,
            }),
            _ => Err(SpecErrors {
                problems: self.problems,
            }),
        }
    }

    fn steps(&mut self, value: Option<&Value>, declared: &[String]) -> Vec<Step> {
        let items = match value {
            None | Some(Value::Null) => {
                self.problem("`steps` is missing: a task needs at least one step like {\"skill\": \"sh\", \"args\": [\"echo hi\"]}");
                return Vec::new();
            }
            Some(Value::Array(items)) if items.is_empty() => {
                self.problem("`steps` is empty: a task needs at least one step");
                return Vec::new();
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.problem(format!("`steps` must be an array, not {}", kind(other)));
                return Vec::new();
            }
        };
        if items.len() > MAX_STEPS {
            self.problem(format!("{} steps given; at most {MAX_STEPS}", items.len()));
        }
        let mut steps = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("steps[{i}]");
            let Value::Object(obj) = item else {
                self.problem(format!("`{at}` must be an object with `skill` and `args`"));
                continue;
            };
            self.unknown_fields(obj, STEP_FIELDS, &format!("{at}."));
            let skill = match obj.get("skill") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                None | Some(Value::Null) => {
                    self.problem(format!("`{at}.skill` is missing"));
                    String::new()
                }
                Some(other) => {
                    self.problem(format!(
                        "`{at}.skill` must be a skill name, not {}",
                        kind(other)
                    ));
                    String::new()
                }
            };
            if !skill.is_empty() && !declared.contains(&skill) {
                self.problem(format!("`{at}.skill` {skill:?} is not listed in `skills`: declare every skill the steps use"));
            }
            // The seed's own example omits `args` for a step that takes none.
            let args = match obj.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => self.strings(v, &format!("{at}.args")),
            };
            let timeout = match obj.get("timeout") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
                    (Some(ms), _) if ms > 0 => Some(ms),
                    (_, Some(f)) if f > 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => {
                        Some(f as u64)
                    }
                    _ => {
                        self.problem(format!(
                            "`{at}.timeout` is {n}: give a positive whole number of milliseconds (default {DEFAULT_STEP_TIMEOUT_MS})"
                        ));
                        None
                    }
                },
                Some(other) => {
                    self.problem(format!(
                        "`{at}.timeout` must be a number of milliseconds, not {}",
                        kind(other)
                    ));
                    None
                }
            };
            let optional = match obj.get("optional") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    self.problem(format!(
                        "`{at}.optional` must be true or false, not {}",
                        kind(other)
                    ));
                    false
                }
            };
            steps.push(Step {
                skill,
                args,
                timeout,
                optional,
            });
        }
        steps
    }

    fn memory(&mut self, v: &Value) -> Option<MemoryEntry> {
        let m = self.typed::<MemoryEntry>(v, "memory")?;
        if m.text.trim().is_empty() {
            self.problem("`memory.text` is empty");
        }
        Some(m)
    }

    fn budget(&mut self, v: &Value) -> Option<Budget> {
        let b = self.typed::<Budget>(v, "budget")?;
        if b.tokens.is_none() && b.cost_usd.is_none() {
            self.problem("`budget` names neither `tokens` nor `cost_usd`");
        }
        if b.tokens == Some(0) {
            self.problem("`budget.tokens` must be positive");
        }
        if let Some(c) = b.cost_usd
            && !(c.is_finite() && c > 0.0)
        {
            self.problem(format!("`budget.cost_usd` is {c}: give a positive amount"));
        }
        Some(b)
    }

    fn typed<T: for<'de> Deserialize<'de>>(&mut self, v: &Value, field: &str) -> Option<T> {
        match T::deserialize(v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(format!("`{field}`: {e}"));
                None
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where a task is in its life. Terminal states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    AwaitingApproval,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
    /// Refused by the policy gate, or its approval was denied or expired.
    Blocked,
}

impl TaskState {
    pub const ALL: [TaskState; 8] = [
        TaskState::Queued,
        TaskState::AwaitingApproval,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::TimedOut,
        TaskState::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::AwaitingApproval => "awaiting_approval",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
            TaskState::TimedOut => "timed_out",
            TaskState::Blocked => "blocked",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded
                | TaskState::Failed
                | TaskState::Cancelled
                | TaskState::TimedOut
                | TaskState::Blocked
        )
    }

    /// The allowed edges: queued → awaiting_approval → running → terminal;
    /// queued may run directly (below the threshold); running may go back to
    /// queued (crash recovery re-queues an interrupted attempt); anything
    /// not terminal may be cancelled.
    pub fn can_become(self, next: TaskState) -> bool {
        use TaskState::*;
        match (self, next) {
            (s, _) if s.is_terminal() => false,
            (_, Cancelled) => true,
            (Queued, AwaitingApproval | Running | Blocked) => true,
            (AwaitingApproval, Running | Blocked) => true,
            (Running, Queued | Succeeded | Failed | TimedOut | Blocked) => true,
            _ => false,
        }
    }

    /// The states from which `next` may be reached.
    pub fn predecessors(next: TaskState) -> Vec<TaskState> {
        TaskState::ALL
            .into_iter()
            .filter(|s| s.can_become(next))
            .collect()
    }
}

impl FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TaskState::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown task state {s:?}"))
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
