//! The deploy manifests checked against the code, since no Docker or Kubernetes runs here: they parse, and
//! they name every subgraph the binary has, with its database, Redis, health probes and the routers' URLs.

use std::path::Path;

use parley::subgraphs::names;
use serde_yaml::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_runs_every_subgraph_on_postgres_and_redis_behind_two_routers() {
    let mut compose: Value =
        serde_yaml::from_str(&read("deploy/docker-compose.yml")).expect("yaml");
    compose.apply_merge().expect("merge keys");
    let services = &compose["services"];
    for infra in ["postgres", "redis", "minio", "router-a", "router-b", "lb"] {
        assert!(services.get(infra).is_some(), "service {infra}");
    }
    let init = read("deploy/postgres-init.sql");
    for name in names() {
        let service = &services[name];
        assert_eq!(strings(&service["command"]), ["subgraph", name], "{name}");
        let env = &service["environment"];
        let database = env["DATABASE_URL"].as_str().unwrap_or_default();
        assert!(
            database.ends_with(&format!("/parley_{name}")),
            "{name}: {database}"
        );
        assert!(
            init.contains(&format!("CREATE DATABASE parley_{name};")),
            "{name}"
        );
        assert!(
            env["PARLEY_REDIS_URL"].as_str().is_some(),
            "{name} uses Redis"
        );
        assert!(service["healthcheck"].is_mapping(), "{name} health");
        assert!(
            env["PARLEY_ROUTER_KEY"].is_string(),
            "{name} knows the router key"
        );
    }
    for router in ["router-a", "router-b"] {
        let args = strings(&services[router]["command"]);
        for name in names() {
            let url = format!("--subgraph-url={name}=http://{name}:4001/graphql");
            assert!(args.contains(&url), "{router} routes {name}: {args:?}");
        }
        assert!(services[router]["environment"]["PARLEY_REDIS_URL"].is_string());
        assert_eq!(
            services[router]["environment"]["PARLEY_ROUTER_KEY"],
            services["chat"]["environment"]["PARLEY_ROUTER_KEY"],
            "routers and subgraphs share one key"
        );
        // The routers believe x-forwarded-for from the balancer's fixed address only.
        assert_eq!(
            services[router]["environment"]["PARLEY_TRUSTED_PROXIES"],
            services["lb"]["networks"]["default"]["ipv4_address"],
            "{router} trusts the balancer"
        );
    }
    // No usable default admin: the admin list is the operator's, empty unless set.
    assert_eq!(
        services["users"]["environment"]["PARLEY_ADMIN_EMAILS"],
        "${PARLEY_ADMIN_EMAILS:-}"
    );
    let nginx = read("deploy/nginx.conf");
    assert!(nginx.contains("server router-a:4000") && nginx.contains("server router-b:4000"));
    assert!(
        nginx.contains("Upgrade $http_upgrade"),
        "WebSockets pass the balancer"
    );
}

#[test]
fn kubernetes_has_a_deployment_service_and_autoscaler_per_component() {
    let text = read("deploy/k8s/parley.yaml");
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("yaml document"))
        .collect();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
    };
    for name in names().into_iter().chain(["router"]) {
        let deployment = find("Deployment", name);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        // The router is ready once its supergraph is loaded; a subgraph once it answers.
        let ready = if name == "router" {
            "/readiness"
        } else {
            "/health"
        };
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], ready);
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");
        find("Service", name);
        let env = serde_yaml::to_string(&container["env"]).expect("env");
        assert!(
            env.contains("key: PARLEY_ROUTER_KEY"),
            "{name} gets the router key"
        );
        let hpa = find("HorizontalPodAutoscaler", name);
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
        if name != "router" {
            assert_eq!(strings(&container["args"]), ["subgraph", name]);
            assert!(env.contains(&format!("DATABASE_URL_{}", name.to_uppercase())));
        }
    }
    let router_args =
        strings(&find("Deployment", "router")["spec"]["template"]["spec"]["containers"][0]["args"]);
    for name in names() {
        assert!(
            router_args
                .iter()
                .any(|a| a.starts_with(&format!("--subgraph-url={name}="))),
            "router routes {name}"
        );
    }
    find("ConfigMap", "parley-config");
    let secrets = find("Secret", "parley-secrets");
    // The router key is the operator's own: the manifest ships no value for it.
    assert!(secrets["stringData"].get("PARLEY_ROUTER_KEY").is_none());
    assert!(!text.contains("change-me-to-a-random-secret"));
    assert!(text.contains("name: parley-router-key"));
}

#[test]
fn the_dockerfile_builds_the_binary_from_every_workspace_member() {
    let dockerfile = read("deploy/Dockerfile");
    assert!(dockerfile.matches("\nFROM ").count() >= 2, "multi-stage");
    assert!(dockerfile.contains("cargo build --release --locked --bin parley"));
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    for path in &copied {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(path).exists(),
            "COPY {path}: no such path"
        );
    }
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    for member in manifest["workspace"]["members"]
        .as_array()
        .expect("members")
    {
        let member = member.as_str().expect("member");
        let top = member.split('/').next().expect("top");
        assert!(
            member == "." || copied.contains(&top) || copied.contains(&member),
            "the image build misses workspace member {member}"
        );
    }
}

#[test]
fn prometheus_scrapes_both_routers_and_every_subgraph() {
    let config: Value =
        serde_yaml::from_str(&read("deploy/monitoring/prometheus.yml")).expect("yaml");
    let targets: Vec<String> = config["scrape_configs"]
        .as_sequence()
        .expect("jobs")
        .iter()
        .flat_map(|job| {
            job["static_configs"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|c| strings(&c["targets"]))
        .collect();
    for target in ["router-a:4000", "router-b:4000"] {
        assert!(targets.contains(&target.to_string()), "{target}");
    }
    for name in names() {
        assert!(targets.contains(&format!("{name}:4001")), "{name}");
    }
}

/// The metric names Parley's own code records (`metrics::counter!("…"` and the like), from its sources.
fn names_in_code() -> std::collections::BTreeSet<String> {
    fn walk(dir: &Path, found: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for macro_name in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
                    for (at, _) in text.match_indices(macro_name) {
                        let rest = &text[at + macro_name.len()..];
                        if let Some(end) = rest.find('"') {
                            found.insert(rest[..end].to_string());
                        }
                    }
                }
            }
        }
    }
    let mut found = std::collections::BTreeSet::new();
    for dir in ["src", "router/src", "subgraphs"] {
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut found);
    }
    found
}

/// Every metric the Grafana dashboard queries is one the code records or the router's page shows once it
/// has served a query and a subscription.
#[tokio::test]
async fn the_dashboard_queries_metrics_that_exist() {
    use parley_harness::{sse_subscribe, Platform};
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/monitoring/parley-dashboard.json")).expect("json");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|target| target["expr"].as_str().map(str::to_string))
        .collect();
    assert!(!exprs.is_empty());

    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let post = p
        .ok(
            "mutation { createPost(input: { title: \"t\", body: \"b\" }) { id } }",
            serde_json::json!({}),
            Some(&alice.access),
        )
        .await["createPost"]["id"]
        .clone();
    let _watching = sse_subscribe(
        &p,
        "subscription($p: ID!) { postScoreChanged(postId: $p) { id } }",
        serde_json::json!({ "p": post }),
        Some(&alice.access),
    )
    .await;
    // The subscription reaches the engine a moment after its response starts (the live front opens a shared
    // stream's upstream from a task of its own): the page is read again until it shows everything, 10 s at most.
    let metrics: Vec<(String, String)> = exprs
        .iter()
        .flat_map(|expr| {
            expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|t| {
                    ["parley_", "http_", "hive_router_"]
                        .iter()
                        .any(|p| t.starts_with(p))
                })
                .map(|metric| (metric.to_string(), expr.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = reqwest::get(p.graphql_url().replace("/graphql", "/metrics"))
            .await
            .expect("router")
            .text()
            .await
            .expect("page");
        let mut known = names_in_code();
        known.extend(
            page.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .filter_map(|l| l.split(['{', ' ']).next())
                .map(str::to_string),
        );
        let missing = metrics.iter().find(|(metric, _)| !known.contains(metric));
        match missing {
            None => break,
            Some((metric, expr)) if std::time::Instant::now() > deadline => {
                panic!("{metric} (in `{expr}`) is not exported")
            }
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}
