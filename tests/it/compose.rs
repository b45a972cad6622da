//! `docker-compose.yml` as compose reads it: the daemon takes the API's address and
//! the credentials from the environment (`.env`), the sandbox runs only under its
//! profile, PostgreSQL is not published on the host's 5432, the daemon's health port is
//! published on the loopback interface only, and Grafana reads the
//! warehouse as the read-only role through its provisioned data source and dashboard.

use std::collections::BTreeMap;
use std::path::Path;

use serde_norway::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    serde_norway::from_str(&text).expect("docker-compose.yml is YAML")
}

/// `KEY=value` lines of an env file, comments and blank lines left out.
fn env_file(name: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(root().join(name))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Compose's interpolation of `${VAR}`, `${VAR:-default}` and `${VAR-default}`.
fn interpolate(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("closing brace");
        let expr = &rest[start + 2..end];
        let (var, default, if_empty) = match (expr.find(":-"), expr.find('-')) {
            (Some(i), _) => (&expr[..i], &expr[i + 2..], true),
            (None, Some(i)) => (&expr[..i], &expr[i + 1..], false),
            (None, None) => (expr, "", false),
        };
        match env.get(var) {
            Some(v) if !(if_empty && v.is_empty()) => out.push_str(v),
            _ => out.push_str(default),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The services compose starts with `env` (its `.env` or `--env-file`): those without
/// a profile, and those of the profiles `COMPOSE_PROFILES` names.
fn started(compose: &Value, env: &BTreeMap<String, String>) -> Vec<String> {
    let active: Vec<&str> = env
        .get("COMPOSE_PROFILES")
        .map(|p| p.split(',').map(str::trim).collect())
        .unwrap_or_default();
    compose["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, s)| match s.get("profiles") {
            None => true,
            Some(p) => p
                .as_sequence()
                .unwrap()
                .iter()
                .any(|p| active.contains(&p.as_str().unwrap())),
        })
        .map(|(name, _)| name.as_str().unwrap().to_string())
        .collect()
}

/// The daemon's environment as compose passes it with `env`.
fn daemon_env(compose: &Value, env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    compose["services"]["linkledger"]["environment"]
        .as_mapping()
        .expect("environment as a mapping")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                interpolate(v.as_str().unwrap(), env),
            )
        })
        .collect()
}

fn config_of(env: Vec<(String, String)>) -> linkledger::config::Config {
    let file = root().join("config/linkledger.toml");
    linkledger::config::Config::load_from(Some(&file), env).expect("the daemon's configuration")
}

#[test]
fn with_real_credentials_in_dot_env_the_daemon_calls_the_real_api_and_no_sandbox_starts() {
    let c = compose();
    let env: BTreeMap<String, String> = [
        ("DATAFORSEO_LOGIN", "me@example.com"),
        ("DATAFORSEO_PASSWORD", "s3cret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        started(&c, &env),
        ["postgres", "linkledger", "grant-reader", "grafana"]
    );
    let cfg = config_of(daemon_env(&c, &env));
    assert_eq!(cfg.api.base_url.as_str(), "https://api.dataforseo.com/v3");
    assert_eq!(cfg.api.login.as_deref(), Some("me@example.com"));
    assert!(cfg.api.credentials().is_ok());
    // The daemon does not need the sandbox to start.
    let sandbox_dep = &c["services"]["linkledger"]["depends_on"]["sandbox"];
    assert_eq!(
        sandbox_dep["required"],
        Value::Bool(false),
        "{sandbox_dep:?}"
    );
}

#[test]
fn dot_env_sets_the_base_url_and_the_credentials() {
    let c = compose();
    let env: BTreeMap<String, String> = [
        (
            "LINKLEDGER_API__BASE_URL",
            "https://gateway.example.com/apis/v1/dataforseo",
        ),
        ("LINKLEDGER_API__AUTH", "bearer"),
        ("DATAFORSEO_TOKEN", "tok-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cfg = config_of(daemon_env(&c, &env));
    assert_eq!(
        cfg.api.base_url.as_str(),
        "https://gateway.example.com/apis/v1/dataforseo"
    );
    assert!(cfg.api.credentials().is_ok());
}

#[test]
fn the_sandbox_runs_only_under_its_profile_which_sandbox_env_turns_on() {
    let c = compose();
    for (name, service) in c["services"].as_mapping().unwrap() {
        let text = serde_norway::to_string(service).unwrap();
        let profiled = service.get("profiles").is_some();
        if name.as_str() == Some("sandbox") {
            assert_eq!(
                service["profiles"],
                Value::Sequence(vec![Value::String("sandbox".into())])
            );
        } else {
            assert!(!profiled, "{name:?} runs by default");
            assert!(
                !text.contains("sandbox:8089"),
                "{name:?} names the sandbox outside its profile: {text}"
            );
        }
    }
    let env = env_file("sandbox.env");
    assert_eq!(
        started(&c, &env),
        [
            "postgres",
            "sandbox",
            "linkledger",
            "grant-reader",
            "grafana"
        ]
    );
    let cfg = config_of(daemon_env(&c, &env));
    assert_eq!(cfg.api.base_url.as_str(), "http://sandbox:8089/v3");
    assert_eq!(cfg.api.login.as_deref(), Some("sandbox"));
}

#[test]
fn postgres_is_not_published_on_the_hosts_5432() {
    let c = compose();
    let env = BTreeMap::new();
    for port in c["services"]["postgres"]["ports"]
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let port = interpolate(port.as_str().unwrap(), &env);
        let parts: Vec<&str> = port.split(':').collect();
        assert!(parts.len() == 3, "bound to an address: {port}");
        assert_eq!(parts[0], "127.0.0.1", "{port}");
        assert_ne!(parts[1], "5432", "{port}");
    }
}

/// A service's environment as compose passes it with `env`.
fn service_env(
    compose: &Value,
    service: &str,
    env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    compose["services"][service]["environment"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{service}: environment as a mapping"))
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                interpolate(v.as_str().unwrap(), env),
            )
        })
        .collect()
}

/// A service's bind mounts: host path (relative to the compose file) to container path.
fn binds(compose: &Value, service: &str) -> BTreeMap<String, String> {
    compose["services"][service]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| {
            let v = v.as_str().unwrap();
            let mut parts = v.split(':');
            let (host, container) = (parts.next().unwrap(), parts.next().unwrap());
            host.starts_with("./").then(|| {
                (
                    host.trim_start_matches("./").to_string(),
                    container.to_string(),
                )
            })
        })
        .collect()
}

/// The container path `host_path` (a path in the repository) is seen at, through the
/// service's bind mounts.
fn in_container(binds: &BTreeMap<String, String>, host_path: &str) -> Option<String> {
    binds.iter().find_map(|(host, container)| {
        host_path
            .strip_prefix(host.as_str())
            .map(|rest| format!("{container}{rest}"))
    })
}

fn yaml_file(path: &str) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(root().join(path)).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn grafana_reads_the_warehouse_as_the_reader_role_that_grant_reader_creates() {
    let c = compose();
    for env in [BTreeMap::new(), env_file("sandbox.env")] {
        let grant = &c["services"]["grant-reader"];
        let command: Vec<&str> = grant["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(command[0], "grant-reader", "{command:?}");
        let role = command[1];
        let password_var =
            command[command.iter().position(|a| *a == "--password-env").unwrap() + 1];
        let grant_env = service_env(&c, "grant-reader", &env);
        let password = &grant_env[password_var];
        assert!(!password.is_empty());
        // It migrates and grants on the database the daemon writes to.
        assert_eq!(
            grant_env["DATABASE_URL"],
            daemon_env(&c, &env)
                .into_iter()
                .find(|(k, _)| k == "DATABASE_URL")
                .unwrap()
                .1
        );
        assert_eq!(
            c["services"]["grant-reader"]["restart"],
            Value::String("no".into())
        );

        let grafana = &c["services"]["grafana"];
        assert_eq!(
            grafana["depends_on"]["grant-reader"]["condition"],
            Value::String("service_completed_successfully".into())
        );
        let grafana_env = service_env(&c, "grafana", &env);
        let binds = binds(&c, "grafana");
        assert_eq!(
            in_container(&binds, "grafana/provisioning/datasources").as_deref(),
            Some("/etc/grafana/provisioning/datasources")
        );

        // The data source: the postgres service, the daemon's database, the reader role
        // with the password grant-reader set.
        let ds = yaml_file("grafana/provisioning/datasources/linkledger.yml");
        let ds = &ds["datasources"][0];
        assert_eq!(
            ds["type"],
            Value::String("grafana-postgresql-datasource".into())
        );
        assert_eq!(ds["url"], Value::String("postgres:5432".into()));
        assert_eq!(ds["user"].as_str(), Some(role));
        assert_eq!(
            ds["jsonData"]["database"],
            Value::String("linkledger".into())
        );
        let pw = ds["secureJsonData"]["password"].as_str().unwrap();
        let var = pw
            .strip_prefix("$__env{")
            .and_then(|p| p.strip_suffix('}'))
            .unwrap_or_else(|| panic!("the password comes from the environment: {pw}"));
        assert_eq!(&grafana_env[var], password);

        // The dashboard provider reads the directory the dashboard is mounted in.
        let provider = yaml_file("grafana/provisioning/dashboards/linkledger.yml");
        let path = provider["providers"][0]["options"]["path"]
            .as_str()
            .unwrap();
        assert_eq!(
            in_container(&binds, "grafana/dashboards").as_deref(),
            Some(path)
        );
        assert!(root().join("grafana/dashboards/linkledger.json").exists());
        let home = &grafana_env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"];
        assert_eq!(
            in_container(&binds, "grafana/dashboards/linkledger.json").as_ref(),
            Some(home)
        );

        // Published on the loopback interface only.
        for port in grafana["ports"].as_sequence().unwrap() {
            let port = interpolate(port.as_str().unwrap(), &env);
            assert!(port.starts_with("127.0.0.1:"), "{port}");
        }
    }
}

#[test]
fn the_daemons_health_port_is_published_on_the_loopback_interface_only_as_the_readme_says() {
    let c = compose();
    let env = BTreeMap::new();
    let ports: Vec<String> = c["services"]["linkledger"]["ports"]
        .as_sequence()
        .expect("the daemon publishes its health port")
        .iter()
        .map(|p| interpolate(p.as_str().unwrap(), &env))
        .collect();
    assert!(!ports.is_empty());
    for port in &ports {
        let parts: Vec<&str> = port.split(':').collect();
        assert!(
            parts.len() == 3 && parts[0] == "127.0.0.1",
            "bound to the loopback interface: {port}"
        );
        let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
        let docker = readme
            .split("\n## Docker")
            .nth(1)
            .expect("README has a Docker section");
        assert!(
            docker.contains(&format!("http://127.0.0.1:{}", parts[1])),
            "README's Docker section names http://127.0.0.1:{}",
            parts[1]
        );
    }
}

#[test]
fn every_port_compose_publishes_is_on_the_loopback_interface() {
    let c = compose();
    let env = BTreeMap::new();
    let services = c["services"].as_mapping().expect("services");
    let mut published = 0;
    for (name, service) in services {
        for port in service["ports"]
            .as_sequence()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let port = interpolate(port.as_str().unwrap(), &env);
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name:?} publishes {port} on every interface"
            );
            published += 1;
        }
    }
    assert!(
        published >= 4,
        "postgres, the sandbox, the daemon and grafana"
    );
}

/// The job files the daemon collects, as a path in the repository, with `env`: its
/// jobs directory (relative to the image's /app) seen through the bind mounts.
fn collected_dir(compose: &Value, env: &BTreeMap<String, String>) -> std::path::PathBuf {
    let cfg = config_of(daemon_env(compose, env));
    let in_app = Path::new("/app").join(&cfg.jobs.dir);
    let binds = binds(compose, "linkledger");
    let host = binds
        .iter()
        .find(|(_, container)| Path::new(container.as_str()) == in_app)
        .map(|(host, _)| host.clone())
        .unwrap_or_else(|| panic!("{} is mounted from the repository", in_app.display()));
    root().join(host)
}

#[test]
fn with_real_credentials_compose_collects_no_example_only_the_users_jobs() {
    let c = compose();
    let env: BTreeMap<String, String> = [
        ("DATAFORSEO_LOGIN", "me@example.com"),
        ("DATAFORSEO_PASSWORD", "s3cret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let dir = collected_dir(&c, &env);
    assert_eq!(dir, root().join("jobs"));
    // As the repository ships it, that directory holds no job: nothing is bought
    // until the user writes one.
    let jobs = linkledger::jobs::load_dir(&dir, chrono::Utc::now().date_naive())
        .unwrap_or_else(|p| panic!("{p}"));
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    let shipped = std::process::Command::new("git")
        .args(["ls-files", "jobs"])
        .current_dir(root())
        .output()
        .unwrap();
    let shipped = String::from_utf8(shipped.stdout).unwrap();
    assert!(
        !shipped.lines().any(|f| f.ends_with(".toml")),
        "jobs/ ships a job file: {shipped}"
    );
    // (A user's own files there are theirs; none of them is an example.)
    for example in ["competitors", "links", "pages", "portfolio"] {
        assert!(!names.contains(&example), "{names:?}");
    }
}

#[test]
fn the_sandbox_trial_collects_the_examples() {
    let c = compose();
    let env = env_file("sandbox.env");
    let dir = collected_dir(&c, &env);
    assert_eq!(dir, root().join("examples/jobs"));
    let jobs = linkledger::jobs::load_dir(&dir, chrono::Utc::now().date_naive())
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(jobs.len(), 4);
}

#[test]
fn postgres_counts_as_healthy_only_once_it_answers_over_tcp() {
    let c = compose();
    let test = c["services"]["postgres"]["healthcheck"]["test"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        test.contains("pg_isready") && test.contains("-h 127.0.0.1"),
        "{test}"
    );
}

#[test]
fn the_build_context_leaves_out_target_and_keeps_what_the_dockerfile_copies() {
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(ignored.contains(&"target"), "{ignored:?}");
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            let top = source.split('/').next().unwrap();
            assert!(
                !ignored.contains(&top) && !ignored.contains(source),
                "the Dockerfile copies {source}, which .dockerignore leaves out"
            );
            assert!(root().join(source).exists(), "{source}");
        }
    }
}
