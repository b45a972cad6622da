use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;

const GOOD: &str = "name = \"good\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n";

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()
}

/// A temporary `jobs/` directory holding `files`.
struct Dir {
    _tmp: tempfile::TempDir,
    jobs: PathBuf,
}

fn dir(files: &[(&str, &str)]) -> Dir {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    for (name, body) in files {
        let path = jobs.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    std::fs::create_dir_all(&jobs).unwrap();
    Dir { _tmp: tmp, jobs }
}

fn load(body: &str) -> Result<Job, Problems> {
    let d = dir(&[("job.toml", body)]);
    load_file(&d.jobs.join("job.toml"), today())
}

/// The problems of a job file, as `field: why` lines.
fn problems(body: &str) -> Vec<String> {
    match load(body) {
        Ok(_) => panic!("expected problems in:\n{body}"),
        Err(p) => {
            p.0.iter()
                .map(|p| format!("{}: {}", p.field, p.why))
                .collect()
        }
    }
}

fn one_problem(body: &str) -> String {
    let p = problems(body);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap()
}

fn with(extra: &str) -> String {
    format!("{GOOD}{extra}")
}

#[test]
fn a_good_job_loads() {
    let job = load(GOOD).unwrap();
    assert_eq!(job.name, "good");
    assert_eq!(job.timezone, None);
    assert_eq!(job.budget_monthly_usd, None);
    assert_eq!(job.collections.len(), 1);
    let c = &job.collections[0];
    assert_eq!(c.job, "good");
    assert_eq!(c.name, "summary");
    assert_eq!(c.endpoint, Endpoint::Summary);
    assert_eq!(c.schedule.as_str(), "@daily");
    assert!(c.params.is_empty());
    assert_eq!(c.target_strings(), vec!["example.com"]);
    assert_eq!(c.catch_up, CatchUp::Latest);
    assert_eq!(c.catch_up_window, DEFAULT_CATCH_UP_WINDOW);
}

#[test]
fn the_full_format_loads() {
    let d = dir(&[
        (
            "job.toml",
            r#"
name = "competitors"
targets = ["dataforseo.com", "https://www.ahrefs.com/", "www.dataforseo.com"]
targets_file = "targets/more.txt"
timezone = "Europe/Berlin"
budget_monthly_usd = 25.5

[[collect]]
name = "summary-daily"
endpoint = "summary"
schedule = "0 6 * * *"
params = { include_subdomains = true, backlinks_status_type = "live" }

[[collect]]
endpoint = "summary"
schedule = "0 7 * * *"
targets = ["https://example.com/page"]
catch_up = "all"
catch_up_window = "36h"

[[collect]]
endpoint = "summary"
schedule = "0 8 * * *"
catch_up = "skip"

[[collect]]
endpoint = "history"
schedule = "0 7 2 * *"
timezone = "UTC"
"#,
        ),
        (
            "targets/more.txt",
            "# competitors\nsemrush.com   # the big one\n\nahrefs.com\n  https://moz.com/  \n",
        ),
    ]);
    let job = load_file(&d.jobs.join("job.toml"), today()).unwrap();
    assert_eq!(job.timezone, Some(chrono_tz::Europe::Berlin));
    assert_eq!(job.budget_monthly_usd, Some(Decimal::new(255, 1)));
    let names: Vec<&str> = job.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["summary-daily", "summary", "summary-2", "history"]
    );
    let first = &job.collections[0];
    assert_eq!(
        first.target_strings(),
        vec!["dataforseo.com", "ahrefs.com", "semrush.com", "moz.com"]
    );
    assert_eq!(first.schedule.timezone(), Some(chrono_tz::Europe::Berlin));
    assert_eq!(
        first.params.get("backlinks_status_type"),
        Some(&ParamValue::Str("live".into()))
    );
    let second = &job.collections[1];
    assert_eq!(second.target_strings(), vec!["https://example.com/page"]);
    assert_eq!(second.catch_up, CatchUp::All);
    assert_eq!(second.catch_up_window, Duration::from_secs(36 * 3600));
    assert_eq!(job.collections[2].catch_up, CatchUp::Skip);
    assert_eq!(job.collections[3].schedule.timezone(), Some(chrono_tz::UTC));
    assert_eq!(
        job.collection("summary-2").unwrap().schedule.as_str(),
        "0 8 * * *"
    );
}

#[test]
fn request_params_add_every_default_and_resolve_dates() {
    let job = load(&with("params = { internal_list_limit = 100, backlinks_filters = [[\"dofollow\", \"=\", true]] }\n")).unwrap();
    let p = job.collections[0].request_params(today());
    assert_eq!(
        serde_json::Value::Object(p),
        serde_json::json!({
            "include_subdomains": true,
            "include_indirect_links": true,
            "exclude_internal_backlinks": true,
            "internal_list_limit": 100,
            "backlinks_status_type": "live",
            "backlinks_filters": [["dofollow", "=", true]],
            "rank_scale": "one_thousand",
        })
    );

    let job = load("name = \"t\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"timeseries_summary\"\nschedule = \"@daily\"\nparams = { group_range = \"week\", date_from = \"-8w\" }\n").unwrap();
    let p = job.collections[0].request_params(today());
    assert_eq!(
        serde_json::Value::Object(p),
        serde_json::json!({
            "date_from": "2026-02-03",
            "date_to": "2026-03-31",
            "group_range": "week",
            "include_subdomains": true,
            "rank_scale": "one_thousand",
        })
    );

    let job = load("name = \"t\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"bulk_new_lost_backlinks\"\nschedule = \"@daily\"\n").unwrap();
    let p = job.collections[0].request_params(today());
    assert_eq!(
        serde_json::Value::Object(p),
        serde_json::json!({ "date_from": "2026-02-28" })
    );

    let job = load("name = \"t\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"bulk_backlinks\"\nschedule = \"@daily\"\n").unwrap();
    assert!(job.collections[0].request_params(today()).is_empty());

    // A tag is sent as written; it has no default.
    let job = load("name = \"t\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"bulk_backlinks\"\nschedule = \"@daily\"\nparams = { tag = \"q4 audit\" }\n").unwrap();
    assert_eq!(
        serde_json::Value::Object(job.collections[0].request_params(today())),
        serde_json::json!({ "tag": "q4 audit" })
    );
}

#[test]
fn problems_display_file_field_and_why() {
    let d = dir(&[("job.toml", &format!("nmae = \"x\"\n{GOOD}"))]);
    let err = load_dir(&d.jobs, today()).unwrap_err();
    let shown = err.to_string();
    let file = d.jobs.join("job.toml");
    assert_eq!(
        shown,
        format!(
            "{}: nmae: unknown key (did you mean `name`?)",
            file.display()
        )
    );
}

#[test]
fn problems_are_shown_one_per_line() {
    let p = Problems(vec![
        Problem {
            file: "jobs/a.toml".into(),
            field: "name".into(),
            why: "x".into(),
        },
        Problem {
            file: "jobs/b.toml".into(),
            field: "collect".into(),
            why: "y".into(),
        },
    ]);
    assert_eq!(
        p.to_string(),
        "jobs/a.toml: name: x\njobs/b.toml: collect: y"
    );
}

#[test]
fn each_mistake_gives_its_message() {
    let cases: Vec<(String, &str)> = vec![
        (format!("nmae = \"x\"\n{GOOD}"), "nmae: unknown key (did you mean `name`?)"),
        (with("schedul = \"@daily\"\n"), "collect[1].schedul: unknown key (did you mean `schedule`?)"),
        (with("zzz = 1\n"), "collect[1].zzz: unknown key"),
        (
            GOOD.replace("\"summary\"", "\"sumary\""),
            "collect[1].endpoint: unknown endpoint `sumary` (did you mean `summary`?)",
        ),
        (GOOD.replace("@daily", "61 * * * *"), "collect[1].schedule: minute field `61` is invalid"),
        (
            GOOD.replace("@daily", "0 0 6 * * *"),
            "collect[1].schedule: expected 5 fields (minute hour day-of-month month day-of-week), found 6",
        ),
        (GOOD.replace("@daily", "every day"), "collect[1].schedule: "),
        (format!("timezone = \"Mars/Olympus\"\n{GOOD}"), "timezone: unknown time zone `Mars/Olympus`"),
        (format!("timezone = \"Europe/Berln\"\n{GOOD}"), "timezone: unknown time zone `Europe/Berln` (did you mean `Europe/Berlin`?)"),
        (
            with("params = { include_subdomain = true }\n"),
            "collect[1].params.include_subdomain: summary takes no parameter `include_subdomain` (did you mean `include_subdomains`?)",
        ),
        (
            with("params = { include_subdomains = \"yes\" }\n"),
            "collect[1].params.include_subdomains: expected a boolean, found string",
        ),
        (
            with("params = { internal_list_limit = 5000 }\n"),
            "collect[1].params.internal_list_limit: must be between 1 and 1000, found 5000",
        ),
        (
            with("params = { backlinks_status_type = \"dead\" }\n"),
            "collect[1].params.backlinks_status_type: must be one of all, live, lost; found `dead`",
        ),
        (
            with("params = { backlinks_filters = \"dofollow\" }\n"),
            "collect[1].params.backlinks_filters: expected an array",
        ),
        (with("params = 3\n"), "collect[1].params: expected a table"),
        (
            with(&format!("params = {{ tag = \"{}\" }}\n", "t".repeat(256))),
            "collect[1].params.tag: must be at most 255 characters, found 256",
        ),
        (with("params = { tag = 7 }\n"), "collect[1].params.tag: expected a string, found integer"),
        (
            GOOD.replace("example.com", "not a domain"),
            "targets[1]: `not a domain` is not a valid domain or absolute URL",
        ),
        (GOOD.replace("\"example.com\"", "\"example.com\", 3"), "targets[2]: expected a string, found integer"),
        (
            GOOD.replace("targets = [\"example.com\"]", "targets_file = \"nope.txt\""),
            "targets_file: cannot read ",
        ),
        (with("catch_up = \"sometimes\"\n"), "collect[1].catch_up: must be latest, skip or all; found `sometimes`"),
        (with("catch_up_window = \"a week\"\n"), "collect[1].catch_up_window: `a week` is not a duration"),
        (GOOD.replace("good", "bad name"), "name: `bad name` may only use letters, digits, `_` and `-`"),
        (GOOD.replace("name = \"good\"\n", ""), "name: missing"),
        (GOOD.replace("name = \"good\"", "name = 3"), "name: expected a string, found integer"),
        (format!("budget_monthly_usd = -1\n{GOOD}"), "budget_monthly_usd: must be at least 0, found -1"),
        (format!("budget_monthly_usd = \"lots\"\n{GOOD}"), "budget_monthly_usd: expected a number"),
        ("name = \"x\"\ntargets = [\"example.com\"]\n".to_string(), "collect: missing"),
        ("name = \"x\"\ntargets = [\"example.com\"]\ncollect = []\n".to_string(), "collect: empty"),
        (GOOD.replace("targets = [\"example.com\"]\n", ""), "targets: collect[1] has no targets"),
        (GOOD.replace("endpoint = \"summary\"\n", ""), "collect[1].endpoint: missing"),
        (GOOD.replace("schedule = \"@daily\"\n", ""), "collect[1].schedule: missing"),
        (
            format!("{GOOD}[[collect]]\nname = \"summary\"\nendpoint = \"summary\"\nschedule = \"@hourly\"\n[[collect]]\nname = \"summary\"\nendpoint = \"summary\"\nschedule = \"@hourly\"\n"),
            "collect[3].name: collection `summary` is already defined in this job",
        ),
        (
            "name = \"h\"\ntargets = [\"https://example.com/page\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\n".to_string(),
            "targets[1]: history takes a bare domain, not the page `https://example.com/page`: use \"example.com\"",
        ),
        (
            format!("{GOOD}[[collect]]\nendpoint = \"timeseries_summary\"\nschedule = \"@daily\"\ntargets = [\"example.com\", \"https://example.com/p\"]\n"),
            "collect[2].targets[2]: timeseries_summary takes a bare domain, not the page `https://example.com/p`: use \"example.com\", which is listed already (drop the page)",
        ),
        ("name = \"x\nfoo".to_string(), "line 2, column "),
    ];
    for (body, expected) in cases {
        let p = problems(&body);
        assert!(
            p.iter().any(|p| p.starts_with(expected)),
            "expected `{expected}` in {p:#?}\nfor:\n{body}"
        );
    }
}

#[test]
fn a_missing_targets_file_names_the_file_it_looked_for() {
    let d = dir(&[(
        "job.toml",
        &GOOD.replace("targets = [\"example.com\"]", "targets_file = \"nope.txt\""),
    )]);
    let err = load_dir(&d.jobs, today()).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    let p = &err.0[0];
    assert_eq!(p.field, "targets_file");
    assert_eq!(
        p.why,
        format!(
            "cannot read {}: No such file or directory",
            d.jobs.join("nope.txt").display()
        )
    );
}

#[test]
fn a_bad_line_in_a_targets_file_gives_its_line_number() {
    let d = dir(&[
        (
            "job.toml",
            &GOOD.replace("targets = [\"example.com\"]", "targets_file = \"t.txt\""),
        ),
        ("t.txt", "# list\nexample.com\nnot a domain\n"),
    ]);
    let err = load_file(&d.jobs.join("job.toml"), today()).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    assert_eq!(err.0[0].field, "targets_file");
    assert!(
        err.0[0]
            .why
            .ends_with("t.txt line 3: `not a domain` is not a valid domain or absolute URL"),
        "{err}"
    );
}

#[test]
fn a_page_in_a_targets_file_for_history_names_the_line() {
    let d = dir(&[
        (
            "job.toml",
            "name = \"h\"\ntargets_file = \"t.txt\"\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\n",
        ),
        ("t.txt", "example.com\nhttps://example.com/page # a page\n"),
    ]);
    let err = load_file(&d.jobs.join("job.toml"), today()).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    assert!(
        err.0[0].why.ends_with(
            "t.txt line 2: history takes a bare domain, not the page `https://example.com/page`: \
             use \"example.com\", which is listed already (drop the page)"
        ),
        "{err}"
    );
}

#[test]
fn a_page_for_a_domain_only_endpoint_suggests_its_domain_without_www() {
    let p = problems(
        "name = \"h\"\ntargets = [\"https://www.Example.com:8443/blog?x=1\", \"https://blog.example.com/a\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@monthly\"\n",
    );
    assert_eq!(
        p,
        vec![
            "targets[1]: history takes a bare domain, not the page `https://www.example.com:8443/blog?x=1`: use \"example.com\"",
            "targets[2]: history takes a bare domain, not the page `https://blog.example.com/a`: use \"blog.example.com\"",
        ]
    );
}

#[test]
fn a_target_listed_again_is_collected_once_with_a_warning_naming_both_places() {
    let d = dir(&[
        (
            "x.toml",
            "name = \"d\"\ntargets = [\"example.com\", \"Example.com\", \"münchen.de\", \"https://www.xn--mnchen-3ya.de/\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\ntargets = [\"a.com\"]\ntargets_file = \"t.txt\"\n",
        ),
        ("t.txt", "b.com\nA.com # again\nb.com\n"),
    ]);
    let job = load_file(&d.jobs.join("x.toml"), today()).unwrap();
    let t = d.jobs.join("t.txt").display().to_string();
    let warnings: Vec<String> = job
        .warnings
        .iter()
        .map(|p| format!("{}: {}", p.field, p.why))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "targets[2]: `Example.com` (that is `example.com`) is listed again (first at targets[1]); it is collected once".to_string(),
            "targets[4]: `https://www.xn--mnchen-3ya.de/` (that is `xn--mnchen-3ya.de`) is listed again (first at targets[3]); it is collected once".to_string(),
            format!("collect[2].targets_file: {t} line 2: `A.com` (that is `a.com`) is listed again (first at collect[2].targets[1]); it is collected once"),
            format!("collect[2].targets_file: {t} line 3: `b.com` is listed again (first at {t} line 1); it is collected once"),
        ]
    );
    let targets: Vec<Vec<&str>> = job
        .collections
        .iter()
        .map(|c| c.targets.iter().map(|t| t.as_str()).collect())
        .collect();
    assert_eq!(
        targets,
        vec![
            vec!["example.com", "xn--mnchen-3ya.de"],
            vec!["a.com", "b.com"]
        ]
    );
}

#[test]
fn duplicates_past_the_first_ten_are_counted_in_one_warning() {
    let lines = "a.com\n".repeat(30);
    let d = dir(&[
        (
            "x.toml",
            &GOOD.replace("targets = [\"example.com\"]", "targets_file = \"t.txt\""),
        ),
        ("t.txt", &lines),
    ]);
    let job = load_file(&d.jobs.join("x.toml"), today()).unwrap();
    assert_eq!(job.warnings.len(), 11, "{:#?}", job.warnings);
    assert!(
        job.warnings[10].why.ends_with(
            "line 12: more targets listed again, each collected once (only the first 10 are shown)"
        ),
        "{}",
        job.warnings[10]
    );
}

#[test]
fn every_problem_of_a_file_is_reported() {
    let body = "nmae = \"x\"\nname = \"x\"\ntimezone = \"Mars/Olympus\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"sumary\"\nschedule = \"61 * * * *\"\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\ncatch_up = \"never\"\n";
    let p = problems(body);
    let fields: Vec<&str> = p.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        fields,
        vec![
            "nmae",
            "timezone",
            "collect[1].endpoint",
            "collect[1].schedule",
            "collect[2].catch_up"
        ]
    );
}

#[test]
fn an_unknown_parameter_does_not_hide_a_date_the_api_would_refuse() {
    let body = "name = \"x\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@daily\"\nparams = { foo = 1, date_from = \"2018-01-01\" }\n";
    let p = problems(body);
    let fields: Vec<&str> = p.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        fields,
        vec!["collect[1].params.foo", "collect[1].params.date_from"],
        "{p:#?}"
    );
    // A date that cannot be read is not checked again as its default.
    let body = "name = \"x\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@daily\"\nparams = { date_from = \"soon\", date_to = \"2019-02-01\" }\n";
    let p = one_problem(body);
    assert!(p.starts_with("collect[1].params.date_from: "), "{p}");
}

#[test]
fn a_syntax_error_gives_line_and_column() {
    let p = one_problem("name = \"x\"\ntargets = [\"a.com\"\n[[collect]]\n");
    assert!(p.starts_with("line 3, column 1: "), "{p}");
}

#[test]
fn targets_are_normalized_and_deduplicated() {
    let job = load(&GOOD.replace(
        "[\"example.com\"]",
        "[\"https://www.Example.com/\", \"example.com\", \"blog.example.com\", \"https://example.com/a\", \"https://example.com/a\"]",
    ))
    .unwrap();
    assert_eq!(
        job.collections[0].target_strings(),
        vec!["example.com", "blog.example.com", "https://example.com/a"]
    );
}

#[test]
fn a_collection_s_targets_replace_the_job_s() {
    let job = load("name = \"x\"\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\ntargets = [\"b.com\", \"c.com\"]\n").unwrap();
    assert_eq!(job.collections[0].target_strings(), vec!["a.com"]);
    assert_eq!(job.collections[1].target_strings(), vec!["b.com", "c.com"]);
}

#[test]
fn collection_names_default_to_the_endpoint_numbered_when_repeated() {
    let body = "name = \"x\"\ntargets = [\"a.com\"]\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"@daily\"\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@hourly\"\n[[collect]]\nendpoint = \"summary\"\nschedule = \"@weekly\"\n[[collect]]\nname = \"mine\"\nendpoint = \"summary\"\nschedule = \"@weekly\"\n";
    let job = load(body).unwrap();
    let names: Vec<&str> = job.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["summary", "bulk_ranks", "summary-2", "summary-3", "mine"]
    );
}

fn dated(endpoint: &str, target: &str, params: &str) -> String {
    format!(
        "name = \"d\"\ntargets = [{target:?}]\n[[collect]]\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\nparams = {{ {params} }}\n"
    )
}

#[test]
fn date_rules() {
    // today() is 2026-03-31.
    let cases = [
        (
            "history",
            "date_from = \"2018-12-31\"",
            "collect[1].params.date_from: history data starts on 2019-01-01; 2018-12-31 is earlier",
        ),
        (
            "timeseries_summary",
            "date_from = \"2019-01-29\"",
            "collect[1].params.date_from: timeseries_summary data starts on 2019-01-30; 2019-01-29 is earlier",
        ),
        (
            "timeseries_new_lost_summary",
            "date_from = \"2019-01-01\"",
            "collect[1].params.date_from: timeseries_new_lost_summary data starts on 2019-01-30",
        ),
        (
            "history",
            "date_from = \"-10y\"",
            "collect[1].params.date_from: history data starts on 2019-01-01; 2016-03-31 (`-10y`) is earlier",
        ),
        (
            "bulk_new_lost_backlinks",
            "date_from = \"-13m\"",
            "collect[1].params.date_from: must be within the last year (not before 2025-03-31), found 2025-02-28 (`-13m`)",
        ),
        (
            "bulk_new_lost_referring_domains",
            "date_from = \"-2y\"",
            "collect[1].params.date_from: must be within the last year",
        ),
        (
            "bulk_new_lost_backlinks",
            "date_from = \"2024-10-25\"",
            "collect[1].params.date_from: must be within the last year (not before 2025-03-31), found 2024-10-25",
        ),
        (
            "history",
            "date_from = \"2024-05-01\", date_to = \"2024-04-01\"",
            "collect[1].params.date_to: date_to 2024-04-01 is before date_from 2024-05-01",
        ),
        (
            "timeseries_summary",
            "date_from = \"-10d\", date_to = \"-20d\"",
            "collect[1].params.date_to: date_to 2026-03-11 (`-20d`) is before date_from 2026-03-21 (`-10d`)",
        ),
        (
            "history",
            "date_from = \"2026-04-01\"",
            "collect[1].params.date_from: 2026-04-01 is in the future (today is 2026-03-31)",
        ),
        (
            "history",
            "date_to = \"2027-01-01\"",
            "collect[1].params.date_to: 2027-01-01 is in the future",
        ),
        (
            "history",
            "date_from = \"yesterday\"",
            "collect[1].params.date_from: `yesterday` is not a date",
        ),
    ];
    for (endpoint, params, expected) in cases {
        let p = one_problem(&dated(endpoint, "example.com", params));
        assert!(
            p.starts_with(expected),
            "{endpoint} {params}: expected `{expected}`, got `{p}`"
        );
    }
}

#[test]
fn dates_within_the_rules_load() {
    for (endpoint, params) in [
        ("history", "date_from = \"2019-01-01\""),
        ("history", "date_from = 2024-01-01, date_to = \"today\""),
        (
            "timeseries_summary",
            "date_from = \"2019-01-30\", group_range = \"week\"",
        ),
        ("bulk_new_lost_backlinks", "date_from = \"-1y\""),
        ("bulk_new_lost_backlinks", "date_from = \"-12m\""),
        (
            "bulk_new_lost_referring_domains",
            "date_from = \"2025-03-31\"",
        ),
        (
            "timeseries_new_lost_summary",
            "date_from = \"-30d\", date_to = \"-30d\"",
        ),
    ] {
        let job = load(&dated(endpoint, "example.com", params));
        assert!(job.is_ok(), "{endpoint} {params}: {}", job.unwrap_err());
    }
}

#[test]
fn load_dir_reads_toml_files_in_name_order() {
    let d = dir(&[
        ("b.toml", &GOOD.replace("good", "bee")),
        ("a.toml", &GOOD.replace("good", "ay")),
        ("notes.txt", "not a job"),
        (".hidden.toml", "garbage ="),
        ("sub/c.toml", "garbage ="),
    ]);
    let jobs = load_dir(&d.jobs, today()).unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, vec!["ay", "bee"]);
    assert_eq!(jobs[0].file, d.jobs.join("a.toml"));
}

#[test]
fn load_dir_collects_the_problems_of_every_file() {
    let d = dir(&[
        ("a.toml", &GOOD.replace("@daily", "nope")),
        (
            "b.toml",
            &format!("nmae = 1\n{}", GOOD.replace("good", "b")),
        ),
        ("c.toml", &GOOD.replace("good", "c")),
    ]);
    let err = load_dir(&d.jobs, today()).unwrap_err();
    let files: Vec<String> = err
        .0
        .iter()
        .map(|p| p.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, vec!["a.toml", "b.toml"]);
}

#[test]
fn duplicate_job_names_are_reported_on_the_later_file() {
    let d = dir(&[("a.toml", GOOD), ("b.toml", GOOD)]);
    let err = load_dir(&d.jobs, today()).unwrap_err();
    assert_eq!(err.len(), 1);
    let p = &err.0[0];
    assert_eq!(p.file, d.jobs.join("b.toml"));
    assert_eq!(p.field, "name");
    assert_eq!(
        p.why,
        format!(
            "job `good` is already defined in {}",
            d.jobs.join("a.toml").display()
        )
    );
}

/// Per broken file: its file name, the fields of its problems and the job kept.
type BrokenView<'a> = Vec<(String, Vec<&'a str>, Option<&'a str>)>;

/// The names of `jobs` and, per broken file, its file name, its fields and the job kept.
fn daemon_view(d: &DirJobs) -> (Vec<&str>, BrokenView<'_>) {
    let names = d.jobs.iter().map(|j| j.name.as_str()).collect();
    let broken = d
        .broken
        .iter()
        .map(|b| {
            (
                b.file.file_name().unwrap().to_string_lossy().into_owned(),
                b.problems.iter().map(|p| p.field.as_str()).collect(),
                b.kept.as_deref(),
            )
        })
        .collect();
    (names, broken)
}

#[test]
fn a_daemon_runs_the_valid_files_and_reports_each_broken_one_with_its_problems() {
    let d = dir(&[
        ("a.toml", &GOOD.replace("good", "ay")),
        (
            "b.toml",
            &format!(
                "{}params = {{ tag = \"weekly\\u0000\" }}\n",
                GOOD.replace("good", "bee").replace("@daily", "nope")
            ),
        ),
        ("c.toml", &GOOD.replace("good", "cee")),
    ]);
    let loaded = load_dir_for_daemon(&d.jobs, today(), &[]).unwrap();
    let (names, broken) = daemon_view(&loaded);
    assert_eq!(names, vec!["ay", "cee"]);
    assert_eq!(
        broken,
        vec![(
            "b.toml".to_string(),
            vec!["collect[1].params.tag", "collect[1].schedule"],
            None
        )]
    );
    let why = loaded.broken[0].why();
    assert!(
        why.starts_with("collect[1].params.tag: holds a NUL character (\\0)")
            && why.contains("; collect[1].schedule: "),
        "{why}"
    );
}

#[test]
fn for_a_daemon_a_name_defined_twice_is_a_problem_of_the_later_file_only() {
    let d = dir(&[("a.toml", GOOD), ("b.toml", GOOD)]);
    let loaded = load_dir_for_daemon(&d.jobs, today(), &[]).unwrap();
    let (names, broken) = daemon_view(&loaded);
    assert_eq!(names, vec!["good"]);
    assert_eq!(broken, vec![("b.toml".to_string(), vec!["name"], None)]);
    assert_eq!(loaded.jobs[0].file, d.jobs.join("a.toml"));
}

#[test]
fn a_file_that_broke_keeps_its_previous_version_and_a_new_broken_file_runs_nothing() {
    let d = dir(&[
        ("a.toml", &GOOD.replace("good", "ay")),
        ("b.toml", &GOOD.replace("good", "bee")),
    ]);
    let before = load_dir_for_daemon(&d.jobs, today(), &[]).unwrap().jobs;
    std::fs::write(d.jobs.join("b.toml"), GOOD.replace("@daily", "nope")).unwrap();
    std::fs::write(d.jobs.join("d.toml"), "garbage =").unwrap();
    let loaded = load_dir_for_daemon(&d.jobs, today(), &before).unwrap();
    let (names, broken) = daemon_view(&loaded);
    assert_eq!(names, vec!["ay", "bee"]);
    assert_eq!(
        broken,
        vec![
            (
                "b.toml".to_string(),
                vec!["collect[1].schedule"],
                Some("bee")
            ),
            ("d.toml".to_string(), vec!["line 1, column 10"], None),
        ]
    );
    assert_eq!(
        loaded.jobs[1].collections[0].schedule.as_str(),
        "@daily",
        "the previous version runs, as it was"
    );
    // Once fixed, the file's new version runs; a file removed runs nothing.
    std::fs::write(d.jobs.join("b.toml"), GOOD.replace("good", "bee2")).unwrap();
    std::fs::remove_file(d.jobs.join("a.toml")).unwrap();
    let loaded = load_dir_for_daemon(&d.jobs, today(), &loaded.jobs).unwrap();
    let (names, broken) = daemon_view(&loaded);
    assert_eq!(names, vec!["bee2"]);
    assert_eq!(broken.len(), 1, "{broken:?}");
}

#[test]
fn a_kept_previous_version_gives_way_to_a_valid_file_that_defines_its_name() {
    let d = dir(&[("b.toml", GOOD)]);
    let before = load_dir_for_daemon(&d.jobs, today(), &[]).unwrap().jobs;
    std::fs::write(d.jobs.join("b.toml"), "garbage =").unwrap();
    std::fs::write(d.jobs.join("c.toml"), GOOD).unwrap();
    let loaded = load_dir_for_daemon(&d.jobs, today(), &before).unwrap();
    let (names, broken) = daemon_view(&loaded);
    assert_eq!(names, vec!["good"]);
    assert_eq!(loaded.jobs[0].file, d.jobs.join("c.toml"));
    assert_eq!(broken[0].2, None, "{broken:?}");
}

#[test]
fn a_jobs_directory_that_cannot_be_read_is_still_an_error_for_a_daemon() {
    let d = dir(&[]);
    let err = load_dir_for_daemon(&d.jobs.join("missing"), today(), &[]).unwrap_err();
    assert!(
        err.0[0].why.contains("cannot read the jobs directory"),
        "{err}"
    );
}

#[test]
fn an_empty_or_missing_directory() {
    let d = dir(&[]);
    assert!(load_dir(&d.jobs, today()).unwrap().is_empty());
    let err = load_dir(&d.jobs.join("missing"), today()).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err.0[0].why.contains("No such file or directory"), "{err}");
}

#[test]
fn select_by_name() {
    let d = dir(&[
        ("a.toml", &GOOD.replace("good", "competitors")),
        ("b.toml", &GOOD.replace("good", "portfolio")),
    ]);
    let jobs = load_dir(&d.jobs, today()).unwrap();
    assert_eq!(select(&jobs, None).unwrap().len(), 2);
    let one = select(&jobs, Some("portfolio")).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, "portfolio");
    assert_eq!(
        select(&jobs, Some("portfolo")).unwrap_err(),
        "no job named `portfolo` (did you mean `portfolio`?); jobs are: competitors, portfolio"
    );
    assert_eq!(
        select(&jobs, Some("zzz")).unwrap_err(),
        "no job named `zzz`; jobs are: competitors, portfolio"
    );
    assert!(
        select(&[], Some("x"))
            .unwrap_err()
            .contains("no job named `x`")
    );
}

#[test]
fn the_example_job_files_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/jobs");
    let today = chrono::Utc::now().date_naive();
    let jobs = load_dir(&root, today).unwrap_or_else(|p| panic!("{p}"));
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, vec!["competitors", "links", "pages", "portfolio"]);
    for job in &jobs {
        for c in &job.collections {
            assert!(c.targets.len() <= 5, "{}/{}", job.name, c.name);
        }
    }
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Loads `body` as `jobs/x.toml` on `today`.
fn load_on(body: &str, today: NaiveDate) -> Result<Job, Problems> {
    let d = dir(&[("x.toml", body)]);
    load_file(&d.jobs.join("x.toml"), today)
}

/// The warnings of a job file that loads, as `field: why` lines.
fn warnings_on(body: &str, today: NaiveDate) -> Vec<String> {
    let job = load_on(body, today).unwrap_or_else(|p| panic!("{p}\nfor:\n{body}"));
    job.warnings
        .iter()
        .map(|p| format!("{}: {}", p.field, p.why))
        .collect()
}

#[test]
fn an_absolute_date_from_about_to_leave_the_one_year_window_loads_with_a_warning() {
    let d = dir(&[(
        "x.toml",
        &dated(
            "bulk_new_lost_backlinks",
            "example.com",
            "date_from = \"2025-12-20\"",
        ),
    )]);
    let file = d.jobs.join("x.toml");
    let job = load_file(&file, day("2026-12-01")).unwrap();
    let shown: Vec<String> = job.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        shown,
        vec![format!(
            "{}: collect[1].params.date_from: 2025-12-20 leaves the API's one-year window on \
             2026-12-20 (in 19 days); after that every call of this collection would be \
             refused; use a relative date such as -30d",
            file.display()
        )]
    );
    // The warning is the job's, not a problem: the collection is there to run.
    assert_eq!(job.collections.len(), 1);
}

#[test]
fn the_age_out_warning_starts_30_days_before_the_last_accepted_day() {
    // today() is 2026-03-31: 2025-04-30 is accepted until 2026-04-30, 30 days on.
    let cases = [
        ("2025-05-01", None),
        (
            "2025-04-30",
            Some("2025-04-30 leaves the API's one-year window on 2026-04-30 (in 30 days); "),
        ),
        (
            "2025-04-01",
            Some("2025-04-01 leaves the API's one-year window on 2026-04-01 (in 1 day); "),
        ),
        (
            "2025-03-31",
            Some("2025-03-31 leaves the API's one-year window on 2026-03-31 (today); "),
        ),
    ];
    for endpoint in ["bulk_new_lost_backlinks", "bulk_new_lost_referring_domains"] {
        for (from, expected) in cases {
            let body = format!(
                "{GOOD}[[collect]]\nendpoint = \"{endpoint}\"\nschedule = \"@daily\"\nparams = {{ date_from = {from} }}\n"
            );
            let w = warnings_on(&body, today());
            match expected {
                None => assert!(w.is_empty(), "{endpoint} {from}: {w:?}"),
                Some(expected) => {
                    assert_eq!(w.len(), 1, "{endpoint} {from}: {w:?}");
                    let want = format!("collect[2].params.date_from: {expected}");
                    assert!(w[0].starts_with(&want), "{endpoint} {from}: {w:?}");
                }
            }
        }
    }
}

#[test]
fn relative_dates_and_endpoints_without_a_one_year_window_never_warn() {
    for (endpoint, params) in [
        ("bulk_new_lost_backlinks", "date_from = \"-1y\""),
        ("bulk_new_lost_backlinks", "date_from = \"-12m\""),
        ("bulk_new_lost_referring_domains", "date_from = \"-365d\""),
        ("bulk_new_lost_backlinks", "date_from = \"today\""),
        ("bulk_new_lost_backlinks", ""),
        ("history", "date_from = \"2025-04-01\""),
        ("timeseries_summary", "date_from = \"2025-04-01\""),
        ("timeseries_new_lost_summary", "date_from = \"2025-04-01\""),
    ] {
        let w = warnings_on(&dated(endpoint, "example.com", params), today());
        assert!(w.is_empty(), "{endpoint} {params}: {w:?}");
    }
    assert!(load(GOOD).unwrap().warnings.is_empty());
}

#[test]
fn load_dir_keeps_each_job_s_warnings() {
    let d = dir(&[
        ("a.toml", GOOD),
        (
            "b.toml",
            &dated(
                "bulk_new_lost_backlinks",
                "example.com",
                "date_from = \"2025-04-10\"",
            ),
        ),
    ]);
    let jobs = load_dir(&d.jobs, today()).unwrap();
    assert!(jobs[0].warnings.is_empty(), "{:?}", jobs[0].warnings);
    assert_eq!(jobs[1].warnings.len(), 1, "{:?}", jobs[1].warnings);
    assert_eq!(jobs[1].warnings[0].file, d.jobs.join("b.toml"));
    assert_eq!(jobs[1].warnings[0].field, "collect[1].params.date_from");
}

fn request(pairs: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect()
}

#[test]
fn a_request_date_that_aged_out_of_the_one_year_window_is_refused_at_plan_time() {
    let p = request(&[("date_from", "2025-10-01")]);
    for endpoint in [
        Endpoint::BulkNewLostBacklinks,
        Endpoint::BulkNewLostReferringDomains,
    ] {
        assert_eq!(check_request_dates(endpoint, &p, day("2026-10-01")), Ok(()));
        assert_eq!(
            check_request_dates(endpoint, &p, day("2026-10-02")),
            Err(
                "date_from 2025-10-01 is now older than the API's one-year window; use a \
                 relative date such as -30d"
                    .to_string()
            )
        );
    }
}

#[test]
fn a_collection_that_loaded_is_refused_at_plan_time_once_its_absolute_date_ages_out() {
    let job = load(&dated(
        "bulk_new_lost_backlinks",
        "example.com",
        "date_from = \"2025-04-15\"",
    ))
    .unwrap();
    let c = &job.collections[0];
    let on = |d: NaiveDate| check_request_dates(c.endpoint, &c.request_params(d), d);
    assert_eq!(on(today()), Ok(()));
    assert_eq!(on(day("2026-04-15")), Ok(()));
    assert!(on(day("2026-04-16")).is_err());

    let job = load(&dated(
        "bulk_new_lost_backlinks",
        "example.com",
        "date_from = \"-1y\"",
    ))
    .unwrap();
    let c = &job.collections[0];
    let mut d = today();
    for _ in 0..800 {
        d = d.succ_opt().unwrap();
        let p = c.request_params(d);
        assert_eq!(check_request_dates(c.endpoint, &p, d), Ok(()), "{d}: {p:?}");
    }
}

#[test]
fn the_day_a_warning_names_is_the_last_day_the_rule_accepts() {
    // Every from-date of two years, leap days and month ends included.
    let mut from = day("2023-01-01");
    while from < day("2025-01-01") {
        let last = super::dates::last_day_in_one_year_window(from);
        let p = request(&[("date_from", &from.format("%Y-%m-%d").to_string())]);
        let e = Endpoint::BulkNewLostBacklinks;
        assert_eq!(check_request_dates(e, &p, last), Ok(()), "{from} on {last}");
        let next = last.succ_opt().unwrap();
        assert!(
            check_request_dates(e, &p, next).is_err(),
            "{from} on {next}"
        );
        from = from.succ_opt().unwrap();
    }
    assert_eq!(
        super::dates::last_day_in_one_year_window(day("2023-02-28")),
        day("2024-02-29")
    );
}

#[test]
fn request_dates_are_checked_by_the_rules_job_loading_uses() {
    let today = today();
    let check =
        |e: Endpoint, pairs: &[(&str, &str)]| check_request_dates(e, &request(pairs), today);
    assert_eq!(
        check(Endpoint::History, &[("date_from", "2018-12-31")]),
        Err("date_from 2018-12-31 is before 2019-01-01, where history data starts".into())
    );
    assert_eq!(
        check(
            Endpoint::History,
            &[("date_from", "2024-01-01"), ("date_to", "2027-01-01")]
        ),
        Err("date_to 2027-01-01 is in the future (today is 2026-03-31)".into())
    );
    assert_eq!(
        check(
            Endpoint::TimeseriesSummary,
            &[("date_from", "2026-03-21"), ("date_to", "2026-03-11")]
        ),
        Err("date_from 2026-03-21 is after date_to 2026-03-11".into())
    );
    assert_eq!(
        check(Endpoint::History, &[("date_from", "soon")]),
        Err("date_from `soon` is not a yyyy-mm-dd date".into())
    );
    let mut p = request(&[]);
    p.insert("date_from".into(), serde_json::json!(20240101));
    assert_eq!(
        check_request_dates(Endpoint::History, &p, today),
        Err("date_from must be a yyyy-mm-dd string, found 20240101".into())
    );
    // Dates left out are the endpoint's defaults, which keep the rules.
    for e in Endpoint::ALL {
        assert_eq!(check(e, &[]), Ok(()), "{e}");
    }
    assert_eq!(
        check(Endpoint::Summary, &[("rank_scale", "one_hundred")]),
        Ok(())
    );
    // Every request a loaded collection makes passes on its load day.
    for (endpoint, params) in [
        ("history", "date_from = \"2019-01-01\""),
        (
            "timeseries_summary",
            "date_from = \"-8w\", date_to = \"today\"",
        ),
        (
            "timeseries_new_lost_summary",
            "date_from = \"-30d\", date_to = \"-30d\"",
        ),
        (
            "bulk_new_lost_referring_domains",
            "date_from = \"2025-03-31\"",
        ),
    ] {
        let job = load(&dated(endpoint, "example.com", params)).unwrap();
        let c = &job.collections[0];
        assert_eq!(
            check_request_dates(c.endpoint, &c.request_params(today), today),
            Ok(()),
            "{endpoint} {params}"
        );
    }
}

const HISTORY: &str = "name = \"h\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"history\"\nschedule = \"@daily\"\n";
const DAILY_NEW_LOST: &str = "name = \"t\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"timeseries_new_lost_summary\"\nschedule = \"@daily\"\n";

#[test]
fn settle_reask_empty_and_reach_back_default_by_endpoint_and_are_read_as_durations() {
    let h = load(HISTORY).unwrap();
    let c = &h.collections[0];
    assert_eq!(c.settle, Duration::ZERO, "history settles by its documents");
    assert_eq!(c.reask_empty, DEFAULT_REASK_EMPTY);
    assert_eq!(c.reach_back, DEFAULT_REACH_BACK);
    let t = load(DAILY_NEW_LOST).unwrap();
    assert_eq!(
        t.collections[0].settle,
        Duration::from_secs(7 * 86_400),
        "a timeseries settles a week after"
    );
    let set = load(&format!(
        "{DAILY_NEW_LOST}settle = \"3d\"\nreask_empty = \"10d\"\nreach_back = \"0s\"\n"
    ))
    .unwrap();
    let c = &set.collections[0];
    assert_eq!(
        (c.settle, c.reask_empty, c.reach_back),
        (
            Duration::from_secs(3 * 86_400),
            Duration::from_secs(10 * 86_400),
            Duration::ZERO
        )
    );
}

#[test]
fn settle_reask_empty_and_reach_back_are_refused_where_there_are_no_periods_or_too_long() {
    assert_eq!(
        one_problem(&with("settle = \"1d\"\n")),
        "collect[1].settle: only history and the timeseries endpoints have periods to settle, ask again or reach back for"
    );
    assert_eq!(
        one_problem(&format!("{HISTORY}settle = \"32d\"\n")),
        "collect[1].settle: `32d` is longer than the most it may be, 31 days"
    );
    assert!(
        one_problem(&format!("{HISTORY}reach_back = \"soon\"\n"))
            .starts_with("collect[1].reach_back: `soon` is not a duration"),
    );
}

#[test]
fn a_window_shorter_than_the_time_between_fires_without_reach_back_is_warned_about() {
    let weekly = "name = \"w\"\ntargets = [\"example.com\"]\n[[collect]]\nendpoint = \"timeseries_summary\"\nschedule = \"0 6 * * 1\"\nparams = { group_range = \"day\", date_from = \"-3d\" }\n";
    // Reaching back (the default) covers the days between fires: no warning.
    assert!(load(weekly).unwrap().warnings.is_empty());
    let job = load(&format!("{weekly}reach_back = \"0s\"\n")).unwrap();
    let text: Vec<String> = job.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("collect[1].params.date_from: its window (3 days) and reach_back (0 days) cover less than the 7 days between two of its fires"),
        "{text:?}"
    );
}

#[test]
fn a_nul_in_any_string_of_a_job_file_is_a_problem_at_its_place() {
    let cases = [
        (
            with("params = { tag = \"a\\u0000b\" }\n"),
            "collect[1].params.tag: holds a NUL character (\\0), which PostgreSQL cannot store",
        ),
        (
            GOOD.replace("\"example.com\"", "\"example.com\", \"b\\u0000.com\""),
            "targets[2]: holds a NUL character",
        ),
        (
            GOOD.replace("name = \"good\"", "name = \"go\\u0000od\""),
            "name: holds a NUL character",
        ),
        (
            with("params = { backlinks_filters = [[\"anchor\", \"like\", \"%a\\u0000%\"]] }\n"),
            "collect[1].params.backlinks_filters[1][3]: holds a NUL character",
        ),
        (
            with("\"na\\u0000me\" = \"x\"\n"),
            "collect[1].na\\0me: the key holds a NUL character",
        ),
    ];
    for (body, expected) in cases {
        let p = problems(&body);
        assert!(
            p.iter().any(|p| p.starts_with(expected)),
            "expected `{expected}` in {p:#?}\nfor:\n{body}"
        );
    }
    // A tag without one loads.
    assert!(load(&with("params = { tag = \"weekly\" }\n")).is_ok());
}

#[test]
fn a_problem_shows_control_characters_escaped_and_long_values_cut() {
    let body = GOOD.replace("name = \"good\"", "name = \"\\u001b[2J\\u0007\"");
    let d = dir(&[("job.toml", &body)]);
    let shown = load_dir(&d.jobs, today()).unwrap_err().to_string();
    assert!(
        !shown.chars().any(|c| c.is_control() && c != '\n'),
        "{shown:?}"
    );
    assert!(
        shown.contains("name: `\\u{1b}[2J\\u{7}` may only use"),
        "{shown}"
    );
    // A problem built with a raw control character is displayed escaped too.
    let p = Problem {
        file: "jobs/a\u{1b}.toml".into(),
        field: "x\ny".into(),
        why: "\u{9b}31m".into(),
    };
    assert_eq!(p.to_string(), "jobs/a\\u{1b}.toml: x\\ny: \\u{9b}31m");

    let long = "x".repeat(12_803);
    for body in [
        GOOD.replace("@daily", &format!("@{long}")),
        GOOD.replace("@daily", &format!("{long} * * * *")),
        with(&format!("catch_up = \"{long}\"\n")),
        with(&format!(
            "params = {{ backlinks_status_type = \"{long}\" }}\n"
        )),
        format!("timezone = \"{long}\"\n{GOOD}"),
        format!("{long} = 1\n{GOOD}"),
        GOOD.replace("example.com", &format!("{long}.com")),
    ] {
        let p = problems(&body);
        assert!(p.iter().all(|p| p.len() < 500), "{p:#?}");
        assert!(p.iter().any(|p| p.contains(" characters)")), "{p:#?}");
    }
}

#[test]
fn a_targets_file_outside_the_jobs_directory_or_no_regular_file_is_refused_unread() {
    let d = dir(&[("t/list.txt", "a.com\n")]);
    std::fs::write(
        d.jobs.parent().unwrap().join("secret"),
        "PASSWORD=hunter2\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../secret", d.jobs.join("link.txt")).unwrap();
    nix::unistd::mkfifo(&d.jobs.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let job = |file: &str| {
        GOOD.replace(
            "targets = [\"example.com\"]",
            &format!("targets_file = \"{file}\""),
        )
    };
    let problem = |file: &str| {
        std::fs::write(d.jobs.join("job.toml"), job(file)).unwrap();
        let err = load_file(&d.jobs.join("job.toml"), today()).unwrap_err();
        assert_eq!(err.len(), 1, "{err}");
        assert_eq!(err.0[0].field, "targets_file");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        err.0[0].why.clone()
    };
    assert!(problem("/etc/passwd").starts_with("`/etc/passwd` is an absolute path"));
    assert!(problem("/dev/zero").starts_with("`/dev/zero` is an absolute path"));
    for out in ["../secret", "link.txt", "t/../../secret"] {
        assert!(
            problem(out).contains("leads outside the jobs directory"),
            "{out}"
        );
    }
    assert!(problem("fifo").ends_with("fifo: it is a FIFO, not a regular file"));
    assert!(problem("t").ends_with("t: it is a directory, not a regular file"));
    std::fs::write(
        d.jobs.join("big.txt"),
        "a.com\n".repeat(MAX_FILE_BYTES as usize / 6 + 1),
    )
    .unwrap();
    assert!(problem("big.txt").contains("more than the 4194304 (4 MiB) a file may"));
    // Inside, it loads.
    std::fs::write(d.jobs.join("job.toml"), job("t/../t/list.txt")).unwrap();
    let loaded = load_file(&d.jobs.join("job.toml"), today()).unwrap();
    assert_eq!(loaded.collections[0].target_strings(), vec!["a.com"]);
}

#[test]
fn a_targets_file_of_wrong_lines_is_not_shown_whole() {
    let lines: String = (1..=25).map(|i| format!("secret line {i}\n")).collect();
    let d = dir(&[
        (
            "job.toml",
            &GOOD.replace("targets = [\"example.com\"]", "targets_file = \"t.txt\""),
        ),
        ("t.txt", &lines),
    ]);
    let err = load_file(&d.jobs.join("job.toml"), today()).unwrap_err();
    assert_eq!(err.len(), 11, "{err}");
    assert!(err.0[9].why.contains("line 10: `secret line 10`"), "{err}");
    assert!(
        err.0[10]
            .why
            .ends_with("t.txt: 15 more wrong lines not shown"),
        "{err}"
    );
    assert!(!err.to_string().contains("secret line 11"), "{err}");
}

#[test]
fn job_targets_name_each_target_of_each_collection_with_its_answer_options_and_schedule() {
    let job = load(
        "name = \"j\"\ntargets = [\"a.com\", \"www.b.com\"]\ntimezone = \"Europe/Berlin\"\n\
         [[collect]]\nendpoint = \"bulk_ranks\"\nschedule = \"30 8 * * 1-5\"\nparams = { rank_scale = \"one_hundred\" }\n\
         [[collect]]\nname = \"ts\"\nendpoint = \"timeseries_summary\"\nschedule = \"@daily\"\ntargets = [\"a.com\"]\n",
    )
    .unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .to_utc();
    let rows = job_targets(&[job], now);
    let keys: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.collection.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("bulk_ranks", "a.com"),
            ("bulk_ranks", "b.com"),
            ("ts", "a.com")
        ]
    );
    assert_eq!(
        rows[0].options,
        serde_json::json!({"rank_scale": "one_hundred"})
    );
    assert_eq!(rows[0].group_range, None);
    assert_eq!(rows[0].schedule, "30 8 * * 1-5");
    assert_eq!(rows[0].timezone.as_deref(), Some("Europe/Berlin"));
    // Weekdays in Berlin: the weekend, an hour longer when the clocks go back in it.
    assert_eq!(rows[0].every, Some(chrono::TimeDelta::hours(73)));
    // The options the warehouse keys its rows by: the defaults filled in, the grain
    // apart.
    assert_eq!(
        rows[2].options,
        serde_json::json!({"include_subdomains": true, "rank_scale": "one_thousand"})
    );
    assert_eq!(rows[2].group_range.as_deref(), Some("month"));
    assert!(rows[2].file.ends_with("job.toml"), "{}", rows[2].file);
}
