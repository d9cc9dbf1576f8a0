//! PLACEHOLDER until the routing branch lands: the rule shapes only.
use crate::{Category, Destination, Severity};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Matcher {
    #[serde(default)]
    pub category: Option<Category>,
    #[serde(default)]
    pub severity: Option<Severity>,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "match", default)]
    pub matcher: Matcher,
    pub to: Vec<Destination>,
    #[serde(rename = "continue", default)]
    pub continue_: bool,
}
impl RuleSpec {
    pub fn defaults() -> Vec<RuleSpec> {
        Vec::new()
    }
}
#[derive(Debug, thiserror::Error)]
#[error("rule error")]
pub struct RuleError;
pub struct Router;
impl Router {
    pub fn new(_r: Vec<RuleSpec>, _u: Destination) -> Result<Router, Vec<RuleError>> {
        Ok(Router)
    }
}
