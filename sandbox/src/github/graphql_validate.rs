//! Validation of a parsed query against the schema extract, before anything
//! runs: every field and argument exists, required arguments are given,
//! literals and variables fit their types, leaves take no selection and
//! objects need one (graphql-ruby's messages and `extensions`); then the
//! variables' values, and GitHub's own pagination rules with its node count.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::graphql_query::{self, Field, Operation};
use super::graphql_schema::{FieldDef, Kind, Schema, TypeDef};
use super::graphql_syntax::{Input, Pos, TypeRef};

/// GitHub's cap on `first`/`last` for every connection.
const MAX_PAGE: i64 = 100;

pub(super) fn loc(pos: Pos) -> Value {
    json!([{ "line": pos.line, "column": pos.column }])
}

// wording and `extensions`.

struct Check<'a> {
    schema: &'a Schema,
    op: &'a Operation,
    declared: HashMap<&'a str, &'a TypeRef>,
    used: HashSet<String>,
    errors: Vec<Value>,
}

pub(super) fn validate(schema: &Schema, op: &Operation) -> Vec<Value> {
    let mut c = Check {
        schema,
        op,
        declared: op
            .variables
            .iter()
            .map(|v| (v.name.as_str(), &v.ty))
            .collect(),
        used: HashSet::new(),
        errors: Vec::new(),
    };
    for v in &op.variables {
        let base = v.ty.base();
        if !schema
            .get(base)
            .is_some_and(|t| matches!(t.kind, Kind::Scalar | Kind::Enum | Kind::Input))
        {
            c.errors.push(json!({
                "path": [op.path_name()],
                "extensions": {"code": "variableRequiresValidType", "typeName": v.ty.to_string(), "variableName": v.name},
                "locations": loc(v.pos),
                "message": format!("{} isn't a valid input type (on ${})", v.ty, v.name)
            }));
        }
    }
    let root = schema.get("Query").expect("the schema has Query");
    let mut path = vec![op.path_name()];
    c.selection(root, &op.selection, &mut path);
    for v in &op.variables {
        if !c.used.contains(&v.name) {
            c.errors.push(json!({
                "path": [op.path_name()],
                "extensions": {"code": "variableNotUsed", "variableName": v.name},
                "locations": loc(v.pos),
                "message": format!("Variable ${} is declared by {} but not used", v.name, op_label(op))
            }));
        }
    }
    c.errors
}

fn op_label(op: &Operation) -> String {
    op.name.clone().unwrap_or_else(|| "anonymous query".into())
}

/// A value as GraphQL writes it, for error messages.
fn show(v: &Input) -> String {
    match v {
        Input::Null => "null".into(),
        Input::Int(n) => n.to_string(),
        Input::Float(f) => f.to_string(),
        Input::Str(s) => format!("{s:?}"),
        Input::Bool(b) => b.to_string(),
        Input::Enum(e) => e.clone(),
        Input::Var(n) => format!("${n}"),
        Input::List(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Input::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Whether a literal fits an input type (variables are checked apart).
fn literal_ok(schema: &Schema, ty: &TypeRef, v: &Input) -> bool {
    match (ty, v) {
        (_, Input::Var(_)) => true,
        (TypeRef::NonNull(_), Input::Null) => false,
        (TypeRef::NonNull(t), v) => literal_ok(schema, t, v),
        (_, Input::Null) => true,
        (TypeRef::List(t), Input::List(items)) => items.iter().all(|i| literal_ok(schema, t, i)),
        (TypeRef::List(t), v) => literal_ok(schema, t, v),
        (TypeRef::Named(_), Input::List(_)) => false,
        (TypeRef::Named(n), v) => match (n.as_str(), v) {
            ("Int", Input::Int(i)) => i32::try_from(*i).is_ok(),
            ("Float", Input::Int(_) | Input::Float(_)) => true,
            ("Boolean", Input::Bool(_)) => true,
            ("ID", Input::Str(_) | Input::Int(_)) => true,
            ("String", Input::Str(_)) => true,
            ("Int" | "Float" | "Boolean" | "ID" | "String", _) => false,
            (other, v) => match schema.get(other).map(|t| t.kind) {
                Some(Kind::Enum) => matches!(v, Input::Enum(_)),
                Some(Kind::Input) => matches!(v, Input::Object(_)),
                // GitHub's custom scalars (DateTime, URI, GitObjectID...) travel as strings.
                Some(Kind::Scalar) => matches!(v, Input::Str(_)),
                _ => false,
            },
        },
    }
}

/// The variable's type may stand where `want` is expected: same shape, and
/// non-null where `want` is non-null (unless the variable has a default).
fn var_fits(have: &TypeRef, has_default: bool, want: &TypeRef) -> bool {
    match (have, want) {
        (TypeRef::NonNull(h), TypeRef::NonNull(w)) => var_fits(h, false, w),
        (TypeRef::NonNull(h), w) => var_fits(h, false, w),
        (h, TypeRef::NonNull(w)) => has_default && var_fits(h, false, w),
        (TypeRef::List(h), TypeRef::List(w)) => var_fits(h, false, w),
        (TypeRef::Named(h), TypeRef::Named(w)) => h == w,
        _ => false,
    }
}

impl Check<'_> {
    fn selection(&mut self, parent: &TypeDef, fields: &[Field], path: &mut Vec<String>) {
        for f in fields {
            path.push(f.key().to_string());
            self.field(parent, f, path);
            path.pop();
        }
    }

    fn field(&mut self, parent: &TypeDef, f: &Field, path: &mut Vec<String>) {
        if f.name == "__typename" {
            if !f.selection.is_empty() {
                self.scalar_selected(f, "String", path);
            }
            return;
        }
        let Some(def) = parent.field(&f.name) else {
            self.errors.push(json!({
                "path": path,
                "extensions": {"code": "undefinedField", "typeName": parent.name, "fieldName": f.name},
                "locations": loc(f.pos),
                "message": format!("Field '{}' doesn't exist on type '{}'", f.name, parent.name)
            }));
            return;
        };
        for a in &f.args {
            let Some(adef) = def.arg(&a.name) else {
                let mut p = path.clone();
                p.push(a.name.clone());
                self.errors.push(json!({
                    "path": p,
                    "extensions": {"code": "argumentNotAccepted", "name": f.name, "typeName": "Field", "argumentName": a.name},
                    "locations": loc(a.pos),
                    "message": format!("Field '{}' doesn't accept argument '{}'", f.name, a.name)
                }));
                continue;
            };
            self.argument(f, &adef.ty, a, path);
        }
        let missing: Vec<&str> = def
            .args
            .iter()
            .filter(|a| a.required() && f.arg(&a.name).is_none())
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            self.errors.push(json!({
                "path": path,
                "extensions": {"code": "missingRequiredArguments", "className": "Field", "name": f.name, "arguments": missing.join(", ")},
                "locations": loc(f.pos),
                "message": format!("Field '{}' is missing required arguments: {}", f.name, missing.join(", "))
            }));
        }
        let base = def.ty.base();
        if self.schema.is_leaf(base) {
            if !f.selection.is_empty() {
                self.scalar_selected(f, base, path);
            }
        } else if f.selection.is_empty() {
            self.errors.push(json!({
                "path": path,
                "extensions": {"code": "selectionMismatch", "nodeName": format!("field '{}'", f.name), "typeName": base},
                "locations": loc(f.pos),
                "message": format!(
                    "Field must have selections (field '{}' returns {} but has no selections. Did you mean '{} {{ ... }}'?)",
                    f.name, base, f.name
                )
            }));
        } else if let Some(t) = self.schema.get(base) {
            self.selection(t, &f.selection, path);
        }
    }

    fn scalar_selected(&mut self, f: &Field, base: &str, path: &[String]) {
        let names: Vec<&str> = f.selection.iter().map(|s| s.name.as_str()).collect();
        self.errors.push(json!({
            "path": path,
            "extensions": {"code": "selectionMismatch", "nodeName": format!("field '{}'", f.name), "typeName": base},
            "locations": loc(f.pos),
            "message": format!(
                "Selections can't be made on scalars (field '{}' returns {} but has selections [{}])",
                f.name, base, names.join(", ")
            )
        }));
    }

    fn argument(
        &mut self,
        f: &Field,
        want: &TypeRef,
        a: &graphql_query::Argument,
        path: &[String],
    ) {
        let mut p = path.to_vec();
        p.push(a.name.clone());
        let mut vars = Vec::new();
        collect_vars(&a.value, &mut vars);
        for name in vars {
            self.used.insert(name.to_string());
            match self.declared.get(name) {
                None => self.errors.push(json!({
                    "path": p,
                    "extensions": {"code": "variableNotDefined", "variableName": name},
                    "locations": loc(a.pos),
                    "message": format!("Variable ${name} is used by {} but not declared", op_label(self.op))
                })),
                Some(have) => {
                    // A variable nested in a list literal is checked against the item type.
                    let want = if matches!(a.value, Input::Var(_)) {
                        want
                    } else {
                        match want.nullable() {
                            TypeRef::List(t) => t,
                            t => t,
                        }
                    };
                    let has_default = self
                        .op
                        .variables
                        .iter()
                        .any(|v| v.name == name && v.default.is_some());
                    if !var_fits(have, has_default, want) {
                        let same_base = have.base() == want.base();
                        let (code, what) = if same_base {
                            ("variableMismatch", "Nullability mismatch")
                        } else {
                            ("variableMismatch", "Type mismatch")
                        };
                        self.errors.push(json!({
                            "path": p,
                            "extensions": {"code": code, "variableName": name, "typeName": have.to_string(), "argumentName": a.name, "errorMessage": what},
                            "locations": loc(a.pos),
                            "message": format!("{what} on variable ${name} and argument {} ({have} / {want})", a.name)
                        }));
                    }
                }
            }
        }
        if !literal_ok(self.schema, want, &a.value) {
            self.errors.push(json!({
                "path": p,
                "extensions": {"code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": a.name},
                "locations": loc(a.pos),
                "message": format!(
                    "Argument '{}' on Field '{}' has an invalid value ({}). Expected type '{}'.",
                    a.name, f.name, show(&a.value), want
                )
            }));
        }
    }
}

fn collect_vars<'a>(v: &'a Input, out: &mut Vec<&'a str>) {
    match v {
        Input::Var(n) => out.push(n),
        Input::List(items) => items.iter().for_each(|i| collect_vars(i, out)),
        Input::Object(fields) => fields.iter().for_each(|(_, i)| collect_vars(i, out)),
        _ => {}
    }
}

/// Why a JSON value does not fit a variable's type, if it does not.
fn json_problem(schema: &Schema, ty: &TypeRef, v: &Value) -> Option<String> {
    match (ty, v) {
        (TypeRef::NonNull(_), Value::Null) => Some("Expected value to not be null".into()),
        (TypeRef::NonNull(t), v) => json_problem(schema, t, v),
        (_, Value::Null) => None,
        (TypeRef::List(t), Value::Array(items)) => {
            items.iter().find_map(|i| json_problem(schema, t, i))
        }
        (TypeRef::List(t), v) => json_problem(schema, t, v),
        (TypeRef::Named(n), v) => {
            let ok = match n.as_str() {
                "Int" => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                "Float" => v.is_number(),
                "Boolean" => v.is_boolean(),
                "ID" => v.is_string() || v.as_i64().is_some(),
                "String" => v.is_string(),
                other => match schema.get(other).map(|t| t.kind) {
                    Some(Kind::Input) => v.is_object(),
                    _ => v.is_string(),
                },
            };
            (!ok).then(|| format!("Could not coerce value {v} to {n}"))
        }
    }
}

fn input_json(v: &Input, vars: &Map<String, Value>) -> Value {
    match v {
        Input::Null => Value::Null,
        Input::Int(n) => json!(n),
        Input::Float(f) => json!(f),
        Input::Str(s) | Input::Enum(s) => json!(s),
        Input::Bool(b) => json!(b),
        Input::Var(n) => vars.get(n).cloned().unwrap_or(Value::Null),
        Input::List(items) => Value::Array(items.iter().map(|i| input_json(i, vars)).collect()),
        Input::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), input_json(v, vars)))
                .collect(),
        ),
    }
}

/// The variables' values: given, else their default; a missing non-null
/// variable or a value of the wrong type is graphql-ruby's "invalid value".
pub(super) fn coerce_variables(
    op: &Operation,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<Value>> {
    let schema = Schema::github();
    let mut out = Map::new();
    let mut errors = Vec::new();
    for v in &op.variables {
        let value = match (given.get(&v.name), &v.default) {
            (Some(val), _) => Some(val.clone()),
            (None, Some(d)) => Some(input_json(d, &Map::new())),
            (None, None) => None,
        };
        let checked = value.clone().unwrap_or(Value::Null);
        if let Some(problem) = json_problem(schema, &v.ty, &checked) {
            errors.push(json!({
                "extensions": {"value": checked, "problems": [{"path": [], "explanation": problem}]},
                "locations": loc(v.pos),
                "message": format!("Variable ${} of type {} was provided invalid value", v.name, v.ty)
            }));
        }
        if let Some(val) = value {
            out.insert(v.name.clone(), val);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A field's arguments: the query's values (variables substituted), else
/// the schema's defaults; an argument given as an absent variable is absent.
pub(super) fn arg_values(
    f: &Field,
    def: &FieldDef,
    vars: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for a in &def.args {
        let given = f.arg(&a.name).and_then(|arg| match &arg.value {
            Input::Var(n) => vars.get(n).cloned(),
            v => Some(input_json(v, vars)),
        });
        let value = given.or_else(|| a.default.as_ref().map(|d| input_json(d, vars)));
        out.insert(a.name.clone(), value.unwrap_or(Value::Null));
    }
    out
}

/// GitHub's pagination rules (every connection needs `first` or `last`, at
/// most 100) and its node count: the most nodes the query can return.
#[allow(clippy::too_many_arguments)]
pub(super) fn paginate(
    schema: &Schema,
    parent: &TypeDef,
    fields: &[Field],
    vars: &Map<String, Value>,
    multiplier: i64,
    nodes: &mut i64,
    errors: &mut Vec<Value>,
    path: &mut Vec<String>,
) {
    for f in fields {
        let Some(def) = parent.field(&f.name) else {
            continue;
        };
        path.push(f.key().to_string());
        let mut m = multiplier;
        if def.is_connection() {
            let args = arg_values(f, def, vars);
            let first = args.get("first").and_then(Value::as_i64);
            let last = args.get("last").and_then(Value::as_i64);
            let mut refuse = |kind: &str, message: String| {
                errors.push(json!({
                    "type": kind, "path": path.clone(), "locations": loc(f.pos), "message": message
                }));
            };
            if first.is_none() && last.is_none() {
                refuse(
                    "MISSING_PAGINATION_BOUNDARIES",
                    format!(
                        "You must provide a `first` or `last` value to properly paginate the `{}` connection.",
                        f.name
                    ),
                );
            }
            for (name, n) in [("first", first), ("last", last)] {
                match n {
                    Some(n) if n > MAX_PAGE => refuse(
                        "EXCESSIVE_PAGINATION",
                        format!(
                            "Requesting {n} records on the `{}` connection exceeds the `{name}` limit of {MAX_PAGE} records.",
                            f.name
                        ),
                    ),
                    // The sandbox's wording: GitHub's is not on record.
                    Some(n) if n < 1 => refuse(
                        "INVALID_PAGINATION",
                        format!(
                            "`{name}` on the `{}` connection must be between 1 and {MAX_PAGE}, not {n}.",
                            f.name
                        ),
                    ),
                    _ => {}
                }
            }
            let size = first.or(last).unwrap_or(0).clamp(0, MAX_PAGE);
            m = multiplier * size;
            *nodes += m;
        }
        if let Some(t) = schema.get(def.ty.base()) {
            paginate(schema, t, &f.selection, vars, m, nodes, errors, path);
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_fit_by_shape_and_nullability() {
        let t = |s: &str| {
            super::super::graphql_syntax::Cursor::new(s)
                .unwrap()
                .type_ref()
                .unwrap()
        };
        assert!(var_fits(&t("Int!"), false, &t("Int!")));
        assert!(var_fits(&t("Int!"), false, &t("Int")));
        assert!(!var_fits(&t("Int"), false, &t("Int!")));
        assert!(var_fits(&t("Int"), true, &t("Int!")));
        assert!(!var_fits(&t("String!"), false, &t("Int!")));
        assert!(var_fits(&t("[ID!]"), false, &t("[ID!]")));
    }
}
