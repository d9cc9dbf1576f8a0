//! Routing throughput: decisions per second on a realistic 50-rule table
//! (categories, severities, globs on event_type and source, labels,
//! `continue`), over a rotating set of inputs that hit early rules, late
//! rules, fan-outs and `unmatched`.
//!
//! `cargo bench -p switchyard-routing --bench routing`; criterion reports the
//! throughput in elements (decisions) per second.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard_routing::{Category, Destination, RouteInput, Router, RuleSpec, Severity};

fn table() -> Vec<RuleSpec> {
    let mut text = String::new();
    let mut rule = |name: &str, matcher: &str, to: &str, cont: bool| {
        text.push_str(&format!(
            "[[routes]]\nname = \"{name}\"\nmatch = {{ {matcher} }}\nto = [{to}]\ncontinue = {cont}\n\n"
        ));
    };
    rule(
        "action",
        "category = \"action_required\"",
        "\"telegram:operator\"",
        false,
    );
    rule(
        "crit",
        "category = \"alert\", severity = \"critical\"",
        "\"telegram:operator\"",
        true,
    );
    for team in ["payments", "search", "infra", "ml", "web"] {
        rule(
            &format!("team-{team}"),
            &format!("labels = {{ team = \"{team}\", env = \"prod\" }}"),
            &format!("\"discord:{team}\""),
            true,
        );
    }
    for (i, svc) in [
        "db", "cache", "queue", "gateway", "auth", "billing", "mail", "dns", "cdn", "storage",
    ]
    .iter()
    .enumerate()
    {
        rule(
            &format!("svc-{svc}"),
            &format!("category = [\"alert\", \"system\"], event_type = \"{svc}.*\""),
            &format!("\"discord:svc-{svc}\""),
            i % 3 == 0,
        );
    }
    for w in [
        "opsclaw",
        "researcher",
        "publisher",
        "reviewer",
        "builder",
        "tester",
        "scribe",
        "scout",
    ] {
        rule(
            &format!("worker-{w}"),
            &format!("source = \"worker:{w}*\", category = \"subagent_result\""),
            &format!("\"discord:worker-{w}\""),
            false,
        );
    }
    for (i, suffix) in [
        "heartbeat",
        "cron",
        "health",
        "backup",
        "rotate",
        "sync",
        "prune",
        "index",
    ]
    .iter()
    .enumerate()
    {
        let sev = if i % 2 == 0 {
            "severity = \"info\", "
        } else {
            ""
        };
        rule(
            &format!("sys-{suffix}"),
            &format!("{sev}event_type = \"*.{suffix}\""),
            "\"discord:system\"",
            false,
        );
    }
    for (i, ty) in [
        "deploy.{start,finish}",
        "pr.[0-9]*",
        "ci.?ail*",
        "release.*.done",
        "ops.*.retry",
    ]
    .iter()
    .enumerate()
    {
        rule(
            &format!("glob-{i}"),
            &format!("event_type = \"{ty}\", source = \"ci-*\""),
            "\"discord:ci\"",
            false,
        );
    }
    for (i, sev) in ["warning", "critical"].iter().enumerate() {
        rule(
            &format!("sev-{i}"),
            &format!("category = \"memory_update\", severity = \"{sev}\""),
            "\"discord:memory-updates\"",
            false,
        );
    }
    for (name, cat, to) in [
        ("alerts", "alert", "discord:alerts"),
        ("briefings", "briefing", "discord:briefings"),
        ("results", "subagent_result", "discord:sub-agent-results"),
        ("system", "system", "discord:system"),
        ("memory", "memory_update", "discord:memory-updates"),
        ("chat", "chat", "discord:chat"),
    ] {
        rule(
            name,
            &format!("category = \"{cat}\""),
            &format!("\"{to}\""),
            false,
        );
    }
    rule(
        "regional",
        "labels = { region = \"eu\" }, category = \"briefing\"",
        "\"discord:eu\"",
        false,
    );
    rule(
        "late-1",
        "source = \"legacy:*\", event_type = \"*\"",
        "\"discord:legacy\"",
        false,
    );
    rule(
        "late-2",
        "severity = [\"warning\", \"critical\"], source = \"*:*\"",
        "\"discord:noisy\"",
        false,
    );
    rule(
        "late-3",
        "event_type = \"x.{a,b,c}.*\"",
        "\"discord:x\"",
        false,
    );

    #[derive(serde::Deserialize)]
    struct File {
        routes: Vec<RuleSpec>,
    }
    let routes = toml::from_str::<File>(&text)
        .expect("bench table parses")
        .routes;
    assert_eq!(routes.len(), 50, "the bench table has 50 rules");
    routes
}

struct Input {
    category: Category,
    severity: Severity,
    source: String,
    event_type: String,
    labels: BTreeMap<String, String>,
}

fn inputs() -> Vec<Input> {
    let cats: Vec<Category> = Category::KNOWN.to_vec();
    let sources = [
        "worker:opsclaw-1",
        "cron",
        "ci-7",
        "host:db-1",
        "legacy:box",
        "worker:scout",
        "manager",
        "x:y",
    ];
    let types = [
        "db.slow_query",
        "ops.heartbeat",
        "deploy.finish",
        "pr.1234",
        "x.b.y",
        "ops.invoice_autoclaw",
        "storage.full",
        "weekly.review",
        "ops.a.retry",
        "nothing.matches",
        "ci.fail_hard",
    ];
    let label_sets: Vec<BTreeMap<String, String>> = vec![
        BTreeMap::new(),
        BTreeMap::from([("team".into(), "web".into()), ("env".into(), "prod".into())]),
        BTreeMap::from([("region".into(), "eu".into())]),
        BTreeMap::from([("team".into(), "ml".into()), ("env".into(), "dev".into())]),
    ];
    let mut out = Vec::new();
    let mut i = 0usize;
    // 256 inputs: a fixed, varied walk through the combinations.
    while out.len() < 256 {
        out.push(Input {
            category: if i % 13 == 12 {
                Category::Other("custom".into())
            } else {
                cats[i % cats.len()].clone()
            },
            severity: Severity::ALL[(i / 7) % 3],
            source: sources[(i * 5 + i / 3) % sources.len()].into(),
            event_type: types[(i * 7 + i / 5) % types.len()].into(),
            labels: label_sets[(i / 2) % label_sets.len()].clone(),
        });
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let router = Router::new(table(), "discord:system".parse::<Destination>().unwrap())
        .expect("bench table compiles");
    let inputs = inputs();
    let views: Vec<RouteInput> = inputs
        .iter()
        .map(|i| {
            RouteInput::new(&i.category, i.severity, &i.source, &i.event_type)
                .with_labels(&i.labels)
        })
        .collect();
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(views.len() as u64));
    group.bench_function("route_50_rules", |b| {
        b.iter(|| {
            for v in &views {
                black_box(router.route(black_box(v)));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
