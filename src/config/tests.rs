use std::path::Path;

use secrecy::ExposeSecret;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_follow_the_api_limits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load_from(Some(&dir.path().join("none.toml")), env(&[]));
    assert!(matches!(cfg, Err(ConfigError::Missing(_))));
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "").unwrap();
    let cfg = Config::load_from(Some(&file), env(&[])).unwrap();
    assert_eq!(cfg.api.max_in_flight, 30);
    assert_eq!(cfg.api.max_per_minute, 2000);
    assert_eq!(cfg.api.base_url.as_str(), "https://api.dataforseo.com/v3");
    assert_eq!(cfg.api.timeout, Duration::from_secs(180));
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
}

/// Loads `toml` as the config file, with `vars` as the environment.
fn load(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, toml).unwrap();
    Config::load_from(Some(&file), env(vars))
}

#[test]
fn the_shipped_config_file_loads_without_warnings() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_FILE);
    let cfg = Config::load_from(Some(&file), env(&[])).unwrap();
    assert_eq!(cfg.api.timeout, Duration::from_secs(180));
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
}

#[test]
fn a_timeout_under_130s_warns_naming_the_key_the_value_and_the_risk() {
    let cfg = load("[api]\ntimeout = \"60s\"\n", &[]).unwrap();
    assert_eq!(
        cfg.warnings(),
        vec![
            "config: api.timeout = 60s is under 130s: the API may take up to 120 s to \
             answer a live call, so a shorter timeout can give up on an answer the API \
             completed and charged, and the retry pays again"
                .to_string()
        ]
    );
    let cfg = load("", &[("LINKLEDGER_API__TIMEOUT", "2m")]).unwrap();
    let warnings = cfg.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("config: api.timeout = 120s is under 130s: "),
        "{warnings:?}"
    );
    let cfg = load("[api]\ntimeout = \"129s 500ms\"\n", &[]).unwrap();
    assert!(
        cfg.warnings()[0].starts_with("config: api.timeout = 2m 9s 500ms is under 130s"),
        "{:?}",
        cfg.warnings()
    );
}

#[test]
fn a_timeout_of_130s_or_more_does_not_warn() {
    for t in ["130s", "180s", "10m"] {
        let cfg = load(&format!("[api]\ntimeout = \"{t}\"\n"), &[]).unwrap();
        assert!(cfg.warnings().is_empty(), "{t}: {:?}", cfg.warnings());
    }
}

#[test]
fn environment_overrides_the_file_and_conventional_variables_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[api]\nmax_in_flight = 5\nlogin = \"file-login\"\n[budget]\ndaily_usd = 3.5\n",
    )
    .unwrap();
    let cfg = Config::load_from(
        Some(&file),
        env(&[
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "7"),
            ("DATAFORSEO_LOGIN", "env-login"),
            ("DATAFORSEO_PASSWORD", "hunter2"),
            ("DATABASE_URL", "postgres://u:pw@h/db"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.api.max_in_flight, 7);
    assert_eq!(cfg.api.login.as_deref(), Some("env-login"));
    assert_eq!(cfg.budget.daily_usd, Some("3.5".parse().unwrap()));
    assert!(cfg.database_url().is_some());
    let creds = cfg.api.credentials().unwrap();
    let shown = format!("{cfg:?} {creds:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("u:pw"), "{shown}");
}

#[test]
fn a_typo_in_the_config_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[api]\nmax_inflight = 5\n").unwrap();
    let err = Config::load_from(Some(&file), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_inflight"), "{err}");
}

fn problems(toml: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match load(toml, vars) {
        Ok(_) => panic!("loaded: {toml}"),
        Err(ConfigError::Invalid(e)) => e.lines().map(str::to_string).collect(),
        Err(e) => panic!("expected Invalid, got {e:?}"),
    }
}

#[test]
fn a_file_with_three_mistakes_reports_all_three_each_naming_the_file() {
    let lines = problems(
        "[api]\nmax_inflight = 3\ntimeout = \"soon\"\n[budget]\ndaily_usd = \"lots\"\n",
        &[],
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (line, key) in lines
        .iter()
        .zip(["api.max_inflight", "api.timeout", "budget.daily_usd"])
    {
        assert!(line.starts_with(&format!("config: {key}: ")), "{line}");
        assert!(line.ends_with("c.toml)"), "{line}");
    }
    assert!(
        lines[0].contains("did you mean max_in_flight?"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("found \"soon\""), "{}", lines[1]);
}

#[test]
fn a_mistake_made_in_the_environment_names_the_variable() {
    let lines = problems(
        "[api]\nauth = \"digest\"\n",
        &[
            ("LINKLEDGER_QUEUE__LEASE", "long"),
            ("LINKLEDGER_API__MAX_INFLIGHT", "3"),
        ],
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("config: queue.lease: ")
            && l.ends_with("(from environment variable LINKLEDGER_QUEUE__LEASE)")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("config: api.max_inflight: unknown key")
                && l.ends_with("(from environment variable LINKLEDGER_API__MAX_INFLIGHT)")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l
            .starts_with("config: api.auth: 'digest' is not one of basic, bearer")
            && l.ends_with("c.toml)")),
        "{lines:#?}"
    );
}

#[test]
fn problems_name_no_type_of_the_program_and_quote_nothing_inside_quotes() {
    let files = [
        "api = 5\n",
        "[api]\nmax_in_flight = \"many\"\n",
        "[api]\nauth = \"digest\"\n",
        "[api]\nbody = 1\n",
        "[api]\nnope = 1\n",
        "[server]\nlisten = 2024-01-01\n",
        "[budget]\ndaily_usd = 2024-01-01\n",
        "[queue]\nlease = []\n",
        "[jobs]\ndir = 5\n",
        "[database]\npool_size = -1\n",
        "bogus = 1\n",
    ];
    for toml in files {
        for line in problems(toml, &[]) {
            for internal in [
                "``",
                "`one of",
                "usize",
                "u32",
                "struct ",
                "figment::",
                "$__toml",
            ] {
                assert!(!line.contains(internal), "{toml:?}: {line}");
            }
        }
    }
}

#[test]
fn a_secret_of_the_wrong_type_is_rejected_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[api]\npassword = 123456789\n").unwrap();
    let err = Config::load_from(Some(&file), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("api.password"), "{err}");
    assert!(!err.contains("123456789"), "{err}");
}

fn base_url_error(toml: &str, vars: &[(&str, &str)]) -> String {
    match load(toml, vars) {
        Ok(cfg) => panic!("loaded with base_url {}", cfg.api.base_url),
        Err(ConfigError::Invalid(e)) => e,
        Err(e) => panic!("expected Invalid, got {e:?}"),
    }
}

#[test]
fn a_base_url_without_a_scheme_is_an_error_saying_what_to_write() {
    let err = base_url_error("[api]\nbase_url = \"localhost:8089/v3\"\n", &[]);
    assert!(
        err.starts_with(
            "config: api.base_url: `localhost:8089/v3` is not an http(s) URL; write the \
             scheme, e.g. http://localhost:8089/v3 (from TOML file "
        ),
        "{err}"
    );
    assert!(err.ends_with("c.toml)"), "{err}");
    let err = base_url_error("", &[("LINKLEDGER_API__BASE_URL", "api.example.com/v3")]);
    assert!(
        err == ("config: api.base_url: `api.example.com/v3` is not an http(s) URL; write the \
             scheme, e.g. https://api.example.com/v3 \
             (from environment variable LINKLEDGER_API__BASE_URL)"),
        "{err}"
    );
}

#[test]
fn a_base_url_that_is_not_http_or_has_no_host_is_an_error() {
    let err = base_url_error("[api]\nbase_url = \"ftp://x/v3\"\n", &[]);
    assert!(
        err.starts_with(
            "config: api.base_url: `ftp://x/v3` is not an http(s) URL: its scheme is `ftp`; \
             write http:// or https://, e.g. https://x/v3"
        ),
        "{err}"
    );
    let err = base_url_error("", &[("LINKLEDGER_API__BASE_URL", "ftp://x/v3")]);
    assert!(
        err.starts_with("config: api.base_url: `ftp://x/v3` "),
        "{err}"
    );
    let err = base_url_error("[api]\nbase_url = \"http://\"\n", &[]);
    assert!(
        err.starts_with("config: api.base_url: `http://` is not an http(s) URL: empty host"),
        "{err}"
    );
    let err = base_url_error("[api]\nbase_url = \"file:///v3\"\n", &[]);
    assert!(
        err.starts_with("config: api.base_url: `file:///v3` "),
        "{err}"
    );
    let err = base_url_error("[api]\nbase_url = \"\"\n", &[]);
    assert!(
        err.starts_with("config: api.base_url: is empty; write an http(s) URL like "),
        "{err}"
    );
    let err = base_url_error("[api]\nbase_url = 8089\n", &[]);
    assert!(err.starts_with("config: api.base_url: "), "{err}");
}

#[test]
fn http_and_https_base_urls_load_from_the_file_and_the_environment() {
    let cfg = load("[api]\nbase_url = \"http://127.0.0.1:8089/v3\"\n", &[]).unwrap();
    assert_eq!(cfg.api.base_url.as_str(), "http://127.0.0.1:8089/v3");
    let cfg = load(
        "[api]\nbase_url = \"http://127.0.0.1:8089/v3\"\n",
        &[(
            "LINKLEDGER_API__BASE_URL",
            "https://gateway.example.com/dfs/v3",
        )],
    )
    .unwrap();
    assert_eq!(
        cfg.api.base_url.as_str(),
        "https://gateway.example.com/dfs/v3"
    );
}

#[test]
fn a_password_in_a_base_url_is_never_echoed() {
    for (value, shown) in [
        ("ftp://me:s3cret@x/v3", "`ftp://me:***@x/v3`"),
        ("me:s3cret@localhost:8089/v3", "`me:***@localhost:8089/v3`"),
        ("https://me:s3cret@x/v3", "`https://me:***@x/v3`"),
        ("http://me:s3cret@[::1/v3", "`http://me:***@[::1/v3`"),
    ] {
        for err in [
            base_url_error(&format!("[api]\nbase_url = \"{value}\"\n"), &[]),
            base_url_error("", &[("LINKLEDGER_API__BASE_URL", value)]),
        ] {
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains(shown), "{err}");
        }
    }
    let err = base_url_error("[api]\nbase_url = \"ftp://me:s3cret@x/v3\"\n", &[]);
    assert!(
        err.contains("e.g. https://x/v3 "),
        "the hint has no login: {err}"
    );
    let err = base_url_error("[api]\nbase_url = \"https://me:s3cret@x/v3\"\n", &[]);
    assert!(
        err.contains("carries a login or password; put them in api.login and api.password"),
        "{err}"
    );
}

#[test]
fn numeric_secrets_from_the_environment_load_exactly_as_written() {
    for password in ["00123", "123456", "1e5", "0x1F", "true", "1_000", "-7"] {
        for var in ["LINKLEDGER_API__PASSWORD", "DATAFORSEO_PASSWORD"] {
            let cfg = load("[api]\nlogin = \"me\"\n", &[(var, password)])
                .unwrap_or_else(|e| panic!("{var}={password}: {e}"));
            let secret = cfg.api.password.as_ref().expect("a password");
            assert_eq!(secret.expose_secret(), password, "{var}");
        }
    }
    let cfg = load(
        "[api]\nauth = \"bearer\"\n",
        &[("LINKLEDGER_API__TOKEN", "0042")],
    )
    .unwrap();
    let header = cfg.api.credentials().unwrap().header_value();
    assert_eq!(header.expose_secret(), "Bearer 0042");
}

#[test]
fn string_settings_from_the_environment_keep_their_text() {
    let cfg = load(
        "",
        &[
            ("LINKLEDGER_API__LOGIN", "007"),
            ("LINKLEDGER_DATABASE__URL", "1e5"),
            ("LINKLEDGER_JOBS__DIR", "2024"),
            ("LINKLEDGER_API__BASE_URL", "http://127.0.0.1:8089/v3"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.api.login.as_deref(), Some("007"));
    assert_eq!(cfg.database_url().unwrap().expose_secret(), "1e5");
    assert_eq!(cfg.jobs.dir, PathBuf::from("2024"));
    assert_eq!(cfg.api.base_url.as_str(), "http://127.0.0.1:8089/v3");
}

#[test]
fn numbers_and_durations_from_the_environment_are_read_as_their_settings() {
    let cfg = load(
        "",
        &[
            ("LINKLEDGER_API__MAX_IN_FLIGHT", "7"),
            ("LINKLEDGER_API__MAX_PER_MINUTE", "1500"),
            ("LINKLEDGER_DATABASE__POOL_SIZE", "4"),
            ("LINKLEDGER_QUEUE__WORKERS", "0"),
            ("LINKLEDGER_API__TIMEOUT", "3m"),
            ("LINKLEDGER_BUDGET__DAILY_USD", "0.1"),
            ("LINKLEDGER_API__AUTH", "bearer"),
            ("LINKLEDGER_SERVER__LISTEN", "0.0.0.0:9000"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.api.max_in_flight, 7);
    assert_eq!(cfg.api.max_per_minute, 1500);
    assert_eq!(cfg.database.pool_size, 4);
    assert_eq!(cfg.queue.workers, 0);
    assert_eq!(cfg.api.timeout, Duration::from_secs(180));
    assert_eq!(cfg.budget.daily_usd, Some("0.1".parse().unwrap()));
    assert_eq!(cfg.api.auth, AuthKind::Bearer);
    assert_eq!(cfg.server.listen, "0.0.0.0:9000".parse().unwrap());
    let err = load("", &[("LINKLEDGER_API__MAX_IN_FLIGHT", "many")])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("config: api.max_in_flight: "), "{err}");
    assert!(
        err.ends_with("(from environment variable LINKLEDGER_API__MAX_IN_FLIGHT)"),
        "{err}"
    );
}

#[test]
fn bearer_auth_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[api]\nauth = \"bearer\"\n").unwrap();
    let cfg = Config::load_from(Some(&file), env(&[])).unwrap();
    assert!(cfg.api.credentials().is_err());
    let cfg = Config::load_from(Some(&file), env(&[("DATAFORSEO_TOKEN", "tok-123")])).unwrap();
    let header = cfg.api.credentials().unwrap().header_value();
    assert_eq!(header.expose_secret(), "Bearer tok-123");
}
