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
