//! deploy/ stays valid: the YAML parses, the configs load through phiwatch's own
//! config type (unknown keys are errors there), and the Dockerfile runs as non-root.

use phiwatch::config::Config;
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::path::{Path, PathBuf};

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy(name)).expect("read deploy file")
}

fn docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("valid yaml document"))
        .collect()
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

#[test]
fn config_reference_loads() {
    let cfg = Config::load(&deploy("phiwatch.toml")).expect("reference config loads");
    assert_eq!(cfg.kafka.group.as_deref(), Some("phiwatch"));
    assert_eq!(cfg.kafka.auto_offset_reset.as_deref(), Some("earliest"));
    assert_eq!(cfg.alerts.min_severity.as_deref(), Some("high"));
    assert_eq!(cfg.output.roll_ms, Some(60_000));
    assert_eq!(
        cfg.kafka.topic_formats.get("kong-logs").map(String::as_str),
        Some("kong")
    );
}

#[test]
fn kubernetes_manifests_parse_and_hold_what_they_promise() {
    let all = docs(&read("k8s/phiwatch.yaml"));
    let kind = |k: &str| {
        all.iter()
            .find(|d| d["kind"].as_str() == Some(k))
            .unwrap_or_else(|| panic!("no {k} in k8s/phiwatch.yaml"))
    };
    let dep = kind("Deployment");
    let ann = get(dep, &["spec", "template", "metadata", "annotations"]);
    assert_eq!(ann["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(ann["prometheus.io/port"].as_str(), Some("9464"));
    let sc = get(dep, &["spec", "template", "spec", "securityContext"]);
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
    assert!(kind("PodDisruptionBudget")["spec"]["maxUnavailable"].is_number());
    assert!(kind("Secret")["stringData"]["key"].is_string());
    let toml = kind("ConfigMap")["data"]["phiwatch.toml"]
        .as_str()
        .expect("embedded config");
    let cfg = Config::parse(toml, Path::new("configmap")).expect("embedded config loads");
    assert_eq!(cfg.metrics.listen.as_deref(), Some("0.0.0.0:9464"));
}

#[test]
fn compose_has_a_kraft_broker_and_phiwatch() {
    let c = docs(&read("compose.yaml")).remove(0);
    let kafka = get(&c, &["services", "kafka", "environment"]);
    assert_eq!(
        kafka["KAFKA_PROCESS_ROLES"].as_str(),
        Some("broker,controller")
    );
    let pw = get(&c, &["services", "phiwatch"]);
    assert_eq!(
        pw["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    assert!(pw["depends_on"]["kafka"].is_mapping());
}

#[test]
fn dockerfile_is_multi_stage_and_runs_as_non_root() {
    let text = read("Dockerfile");
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage build expected");
    assert!(froms[0].contains(" AS builder"));
    let last_from = text.rfind("\nFROM ").expect("final stage");
    let user = text[last_from..]
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("final stage sets USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "{user}"
    );
    // Every path the build copies exists, so the image builds from this tree.
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
            assert!(p.exists(), "Dockerfile copies missing {src}");
        }
    }
}
