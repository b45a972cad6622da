//! Job-file mistakes: each gives its message and exit status 2, and nothing is written.

use crate::common::*;

const GOOD: &str = "name = \"good\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n";

/// (file body, text the message must contain)
fn mistakes() -> Vec<(&'static str, String, &'static str)> {
    let with = |extra: &str| format!("{GOOD}{extra}");
    vec![
        ("unknown key", format!("nmae = \"x\"\n{GOOD}"), "nmae: unknown key"),
        ("typo in endpoint", GOOD.replace("\"summary\"", "\"sumary\""), "did you mean `summary`"),
        ("bad cron", GOOD.replace("@daily", "61 * * * *"), "collect[1].schedule"),
        ("six-field cron", GOOD.replace("@daily", "0 0 6 * * *"), "collect[1].schedule"),
        ("bad timezone", format!("timezone = \"Mars/Olympus\"\n{GOOD}"), "timezone"),
        ("unknown param", with("params = { include_subdomain = true }\n"), "collect[1].params.include_subdomain"),
        ("wrong param type", with("params = { include_subdomains = \"yes\" }\n"), "collect[1].params.include_subdomains"),
        ("param out of range", with("params = { internal_list_limit = 5000 }\n"), "collect[1].params.internal_list_limit"),
        ("bad choice", with("params = { backlinks_status_type = \"dead\" }\n"), "collect[1].params.backlinks_status_type"),
        ("bad target", GOOD.replace("example.com", "not a domain"), "targets[1]: `not a domain`"),
        ("page for history", "name = \"h\"\ntargets = [\"https://example.com/page\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\n".to_string(), "bare domain"),
        ("missing targets file", GOOD.replace("targets = [\"example.com\"]", "targets_file = \"nope.txt\""), "nope.txt"),
        ("bad catch_up", with("catch_up = \"sometimes\"\n"), "collect[1].catch_up"),
        ("syntax error", "name = \"x\nfoo".to_string(), "job.toml"),
        ("history before 2019", "name = \"h\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\nparams = { date_from = \"2018-12-31\" }\n".to_string(), "2019-01-01"),
    ]
}

#[tokio::test]
async fn each_kind_of_job_file_mistake_gives_its_message_and_exit_status_2() {
    for (what, body, expected) in mistakes() {
        let wd = Workdir::new(&[("job.toml", &body)]);
        let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("jobs/job.toml: "),
            "{what}: message names the file: {err}"
        );
        assert!(
            err.contains(expected),
            "{what}: expected `{expected}` in: {err}"
        );
    }
}

#[tokio::test]
async fn duplicate_job_names_across_files_are_an_error() {
    let wd = Workdir::new(&[("a.toml", GOOD), ("b.toml", GOOD)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("jobs/b.toml: name:"), "{err}");
    assert!(err.contains("good"), "{err}");
}

#[tokio::test]
async fn a_run_with_a_bad_job_file_changes_nothing_in_the_database() {
    let db = TestDb::new().await;
    let sb = default_sandbox().await;
    let bad = GOOD.replace("@daily", "every day");
    let wd = Workdir::new(&[("good.toml", GOOD), ("bad.toml", &bad)]);
    let out = linkledger(wd.path(), &env_for(&db, &sb), &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("jobs/bad.toml: collect[1].schedule"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.stats().requests, 0);
    // Not even the schema was created.
    let mut conn = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&db.url).await.unwrap()
    };
    let schemas: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'linkledger'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(schemas, 0);
}

/// The example files the repository ships (in `examples/jobs/`), checked from a copy
/// in a jobs directory: a user's own job files in `jobs/` are theirs, and must not
/// break `cargo test`.
const SHIPPED: [&str; 5] = [
    "competitors.toml",
    "links.toml",
    "pages.toml",
    "portfolio.toml",
    "targets/portfolio.txt",
];

#[tokio::test]
async fn the_example_jobs_pass_the_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let wd = Workdir::new(&[]);
    for file in SHIPPED {
        let to = wd.path().join("jobs").join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join("examples/jobs").join(file), &to)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    std::fs::create_dir_all(wd.path().join("config")).unwrap();
    std::fs::copy(
        root.join("config/linkledger.toml"),
        wd.path().join("config/linkledger.toml"),
    )
    .unwrap();
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // The list collections of links.toml get a note each: what a fire buys at most.
    let text = stdout(&out);
    let (notes, ok): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("note: "));
    assert_eq!(
        ok,
        ["ok: 4 job files in jobs, 4 jobs, 17 collections"],
        "{text}"
    );
    assert_eq!(notes.len(), 5, "{text}");
    assert!(
        notes
            .iter()
            .all(|n| n.starts_with("note: jobs/links.toml: collect[")
                && n.contains("is a list collection: one fire buys at most")),
        "{text}"
    );
    assert!(stderr(&out).is_empty(), "no warnings: {}", stderr(&out));
}

#[tokio::test]
async fn the_repositorys_jobs_directory_holds_no_job_only_a_template_that_passes_once_copied() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // Nothing in jobs/ runs as it is: no example is bought with real credentials.
    let tracked = std::process::Command::new("git")
        .args(["ls-files", "jobs"])
        .current_dir(root)
        .output()
        .unwrap();
    let tracked = String::from_utf8(tracked.stdout).unwrap();
    assert_eq!(tracked.trim(), "jobs/template.toml.example", "{tracked}");
    // Copied as the template says, it is a job that passes the check.
    let template = std::fs::read_to_string(root.join("jobs/template.toml.example")).unwrap();
    let wd = Workdir::new(&[("my-sites.toml", &template)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "ok: 1 job file in jobs, 1 job, 1 collection"
    );
    // Each commented collection of it passes too, once uncommented.
    let uncommented = template
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if ["[[collect]]", "endpoint =", "schedule =", "params ="]
                    .iter()
                    .any(|k| rest.starts_with(k)) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let wd = Workdir::new(&[("my-sites.toml", &uncommented)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "ok: 1 job file in jobs, 1 job, 3 collections"
    );
}

#[tokio::test]
async fn an_absolute_date_about_to_age_out_is_a_warning_not_a_failure() {
    // Accepted for ten more days: the check passes and says when it stops.
    let from = today()
        .checked_sub_months(chrono::Months::new(12))
        .unwrap()
        .checked_add_days(chrono::Days::new(10))
        .unwrap();
    let body = format!(
        "name = \"n\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"bulk_new_lost_backlinks\"\nschedule = \"@daily\"\nparams = {{ date_from = \"{}\" }}\n",
        from.format("%Y-%m-%d")
    );
    let wd = Workdir::new(&[("job.toml", &body)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: jobs/job.toml: collect[1].params.date_from: ")
            && err.contains("one-year window")
            && err.contains("relative date"),
        "{err}"
    );
}

#[tokio::test]
async fn a_timeout_the_api_may_outlast_is_a_configuration_warning() {
    let wd = Workdir::new(&[(
        "job.toml",
        "name = \"n\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n",
    )]);
    let env = vec![("LINKLEDGER_API__TIMEOUT".to_string(), "60s".to_string())];
    let out = linkledger(wd.path(), &env, &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: config: api.timeout = 60s is under 130s"),
        "{err}"
    );
    let quiet = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(
        !stderr(&quiet).contains("api.timeout"),
        "{}",
        stderr(&quiet)
    );
}

#[tokio::test]
async fn a_collection_one_fire_of_which_costs_more_than_the_threshold_is_a_warning_with_the_figure()
{
    // 600 summary targets: 600 calls at $0.02003 = $12.018, over the $10 default.
    let targets: Vec<String> = (0..600).map(|i| format!("\"d{i}.example.com\"")).collect();
    let body = format!(
        "name = \"big\"\ntargets = [{}]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\n",
        targets.join(", ")
    );
    let wd = Workdir::new(&[("big.toml", &body)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "warning: jobs/big.toml: collect[1]: one fire of summary makes 600 calls estimated at $12.018"
        ),
        "{err}"
    );
    assert!(
        !err.contains("collect[2]"),
        "bulk_ranks is one cheap call: {err}"
    );
    // The threshold is configuration.
    let env = vec![(
        "LINKLEDGER_JOBS__FIRE_COST_WARNING_USD".to_string(),
        "20".to_string(),
    )];
    let out = linkledger(wd.path(), &env, &["jobs", "check"]).await;
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

/// `linkledger jobs check` in `wd` that may neither take more than 1 GiB of memory
/// nor run for more than a minute: a check that reads a file without bound dies or
/// is killed, and fails the test, rather than the machine.
async fn bounded_check(wd: &Workdir) -> std::process::Output {
    let mut cmd = command(wd.path(), &[], &["jobs", "check"]);
    cmd.kill_on_drop(true);
    // SAFETY: `setrlimit` is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let limit = nix::libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if nix::libc::setrlimit(nix::libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("jobs check finished within a minute: it read no unbounded input")
        .expect("running linkledger")
}

/// A job whose targets come from `file`.
fn with_targets_file(file: &str) -> String {
    GOOD.replace(
        "targets = [\"example.com\"]",
        &format!("targets_file = {file:?}"),
    )
}

/// The check refuses `wd`'s job with one `targets_file` problem (exit 2) and shows
/// nothing raw; its output, for more checks.
async fn refused(wd: &Workdir, what: &str) -> String {
    let out = bounded_check(wd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(
        err.contains("jobs/job.toml: targets_file: "),
        "{what}: {err}"
    );
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: a raw control character in {err:?}"
    );
    err
}

#[tokio::test]
async fn a_targets_file_outside_the_jobs_directory_is_refused_and_its_lines_never_shown() {
    let secret = "DATAFORSEO_PASSWORD=hunter2\nsecond.secret.example.com\n";
    let wd = Workdir::new(&[("lists/in.txt", "example.com\n")]);
    std::fs::write(wd.path().join("secret"), secret).unwrap();
    std::os::unix::fs::symlink("../secret", wd.path().join("jobs/link.txt")).unwrap();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let passwd_line = passwd.lines().next().unwrap_or("root:x:0:0");

    for (file, why) in [
        ("/etc/passwd", "`/etc/passwd` is an absolute path"),
        ("../secret", "`../secret` leads outside the jobs directory"),
        ("lists/../../secret", "leads outside the jobs directory"),
        ("link.txt", "`link.txt` leads outside the jobs directory"),
    ] {
        wd.write_job("job.toml", &with_targets_file(file));
        let err = refused(&wd, file).await;
        assert!(err.contains(why), "{file}: {err}");
        assert!(
            !err.contains("hunter2") && !err.contains("second.secret"),
            "{file}: {err}"
        );
        assert!(!err.contains(passwd_line), "{file}: {err}");
    }
    // Inside the directory, through `..` that stays inside, is fine.
    wd.write_job("job.toml", &with_targets_file("lists/../lists/in.txt"));
    let out = bounded_check(&wd).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn a_targets_file_that_is_a_device_or_a_fifo_is_refused_without_being_read() {
    let wd = Workdir::new(&[]);
    std::os::unix::fs::symlink("/dev/zero", wd.path().join("jobs/zero.txt")).unwrap();
    nix::unistd::mkfifo(
        &wd.path().join("jobs/fifo.txt"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    for (file, why) in [
        ("/dev/zero", "`/dev/zero` is an absolute path"),
        ("zero.txt", "`zero.txt` leads outside the jobs directory"),
        ("fifo.txt", "fifo.txt: it is a FIFO, not a regular file"),
        (".", "it is a directory, not a regular file"),
    ] {
        wd.write_job("job.toml", &with_targets_file(file));
        let err = refused(&wd, file).await;
        assert!(err.contains(why), "{file}: {err}");
    }
}

#[tokio::test]
async fn a_targets_file_over_the_size_bound_is_refused() {
    let max = linkledger::jobs::MAX_FILE_BYTES as usize;
    let line = "example.com\n";
    let body = line.repeat(max / line.len() + 1);
    assert!(body.len() > max);
    let wd = Workdir::new(&[
        ("big.txt", &body),
        ("job.toml", &with_targets_file("big.txt")),
    ]);
    let err = refused(&wd, "big.txt").await;
    assert!(
        err.contains(&format!(
            "big.txt: it holds {} bytes, more than the {max}",
            body.len()
        )),
        "{err}"
    );
    assert!(err.len() < 500, "{err}");
    // At the bound it loads.
    wd.write_job("big.txt", &line.repeat(max / line.len()));
    let out = bounded_check(&wd).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn a_targets_file_line_with_an_escape_sequence_is_shown_escaped_and_alone() {
    let lines = "first.example.com\n\u{1b}]0;pwned\u{7}\u{1b}[2Jevil.com\nlast.example.com\n";
    let wd = Workdir::new(&[("t.txt", lines), ("job.toml", &with_targets_file("t.txt"))]);
    let err = refused(&wd, "escape").await;
    assert!(
        err.contains(
            "t.txt line 2: `\\u{1b}]0;pwned\\u{7}\\u{1b}[2Jevil.com` holds a control character"
        ),
        "{err}"
    );
    assert!(
        !err.contains("first.example.com") && !err.contains("last.example.com"),
        "{err}"
    );
}

#[tokio::test]
async fn an_escape_sequence_anywhere_in_a_job_file_reaches_the_terminal_escaped() {
    for (what, body) in [
        ("name", GOOD.replace("\"good\"", "\"\\u001b[2J\"")),
        (
            "target",
            GOOD.replace("example.com", "\\u001b[31mexample.com"),
        ),
        ("schedule", GOOD.replace("@daily", "@\\u001b[2J")),
        ("key", format!("\"\\u001b[2J\" = 1\n{GOOD}")),
        ("timezone", format!("timezone = \"\\u009b31m\"\n{GOOD}")),
    ] {
        let wd = Workdir::new(&[("job.toml", &body)]);
        let out = bounded_check(&wd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            !err.chars().any(|c| c.is_control() && c != '\n'),
            "{what}: a raw control character in {err:?}"
        );
        assert!(
            err.contains("\\u{1b}[") || err.contains("\\u{9b}31m"),
            "{what}: {err}"
        );
    }
}

#[tokio::test]
async fn a_nul_character_in_any_string_of_a_job_file_is_refused() {
    for (body, expected) in [
        (
            format!("{GOOD}params = {{ tag = \"weekly\\u0000\" }}\n"),
            "jobs/job.toml: collect[1].params.tag: holds a NUL character",
        ),
        (
            format!(
                "{GOOD}params = {{ backlinks_filters = [[\"anchor\", \"like\", \"%\\u0000%\"]] }}\n"
            ),
            "jobs/job.toml: collect[1].params.backlinks_filters[1][3]: holds a NUL character",
        ),
        (
            GOOD.replace("\"example.com\"", "\"example.com\\u0000\""),
            "jobs/job.toml: targets[1]: holds a NUL character",
        ),
    ] {
        let wd = Workdir::new(&[("job.toml", &body)]);
        let out = bounded_check(&wd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{expected}: {err}");
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
        assert!(err.contains("PostgreSQL cannot store"), "{err}");
    }
}

#[tokio::test]
async fn targets_the_api_would_refuse_are_refused_with_a_short_message() {
    let long_domain = format!("{}.com", "a.".repeat(6400));
    assert_eq!(long_domain.len(), 12_804);
    let long_page = format!("https://example.com/{}", "p".repeat(2100));
    for (target, expected) in [
        ("999.999.999.999".to_string(), "must be an IPv4 address"),
        ("-bad.example.com".to_string(), "starts or ends with `-`"),
        (format!("{}.com", "a".repeat(64)), "a label at most 63"),
        (
            [&"a".repeat(63)[..]; 4].join("."),
            "a domain name at most 253",
        ),
        (long_domain, "is too long"),
        (long_page, "a page URL may have at most 2048 characters"),
    ] {
        let wd = Workdir::new(&[("job.toml", &GOOD.replace("example.com", &target))]);
        let out = bounded_check(&wd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {err}");
        assert!(err.contains("jobs/job.toml: targets[1]: "), "{err}");
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
        assert!(err.len() < 600, "the message quotes the target cut: {err}");
    }
}

#[tokio::test]
async fn a_missing_jobs_directory_is_named_with_its_setting_and_an_empty_one_is_a_warning() {
    let wd = Workdir::new(&[]);
    std::fs::remove_dir(wd.path().join("jobs")).unwrap();
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot read the jobs directory {} (jobs.dir, or LINKLEDGER_JOBS__DIR)",
            wd.path().join("jobs").display()
        )),
        "{err}"
    );
    std::fs::create_dir(wd.path().join("jobs")).unwrap();
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: no job files in jobs (jobs.dir, or LINKLEDGER_JOBS__DIR): nothing will be collected"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn an_internationalised_domain_passes_as_its_punycode_and_one_idna_refuses_says_why() {
    let wd = Workdir::new(&[("job.toml", &GOOD.replace("example.com", "münchen.de"))]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    for (target, why) in [
        (
            "xn--a.com",
            "targets[1]: `xn--a.com` is not a valid domain: its label `xn--a` is no valid punycode",
        ),
        (
            "https://ex\u{e000}ample.com/page",
            "is not a valid domain: its label `ex\u{e000}ample` holds `\u{e000}` (U+E000), which the IDNA rules (UTS #46) do not allow there",
        ),
    ] {
        wd.write_job("job.toml", &GOOD.replace("example.com", target));
        let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {err}");
        assert!(err.contains("jobs/job.toml: "), "{err}");
        assert!(err.contains(why), "expected `{why}` in: {err}");
    }
}

#[tokio::test]
async fn a_page_for_a_domain_only_endpoint_is_refused_with_the_domain_to_use() {
    let body = "name = \"h\"\ntargets = [\"https://www.example.com/blog/\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\n";
    let wd = Workdir::new(&[("job.toml", body)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "jobs/job.toml: targets[1]: history takes a bare domain, not the page `https://www.example.com/blog/`: use \"example.com\""
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_target_listed_twice_is_a_warning_naming_the_file_the_field_and_the_value() {
    let body = GOOD.replace(
        "targets = [\"example.com\"]",
        "targets = [\"example.com\", \"Example.com\", \"münchen.de\", \"xn--mnchen-3ya.de\"]",
    );
    let wd = Workdir::new(&[("job.toml", &body)]);
    let out = linkledger(wd.path(), &[], &["jobs", "check"]).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        stdout(&out).starts_with("ok: 1 job file"),
        "{}",
        stdout(&out)
    );
    for expected in [
        "warning: jobs/job.toml: targets[2]: `Example.com` (that is `example.com`) is listed again (first at targets[1]); it is collected once",
        "warning: jobs/job.toml: targets[4]: `xn--mnchen-3ya.de` is listed again (first at targets[3]); it is collected once",
    ] {
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
    }
    // The plan counts each target once.
    let out = linkledger(wd.path(), &[], &["plan"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("summary (2 calls)"),
        "{}",
        stdout(&out)
    );
}
