use std::path::PathBuf;
use std::time::Duration;

use chrono::TimeZone;

use super::*;
// The bill's text is the command line's; these tests read the bill and its text together.
use crate::cli::plan::render_bill as render_text;
use crate::jobs::schedule::Schedule;
use crate::jobs::{CatchUp, DateSpec, ParamValue};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn usd(s: &str) -> Usd {
    s.parse().unwrap()
}

fn collection(
    endpoint: &str,
    schedule: &str,
    tz: Option<Tz>,
    targets: &[String],
    params: &[(&str, ParamValue)],
) -> Collection {
    Collection {
        job: String::new(),
        name: endpoint.to_string(),
        endpoint: endpoint.parse().unwrap(),
        schedule: Schedule::parse(schedule, tz).unwrap(),
        params: Params(
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
        targets: targets.iter().map(|t| Target::parse(t).unwrap()).collect(),
        catch_up: CatchUp::Latest,
        catch_up_window: Duration::from_secs(3600),
        refetch: Default::default(),
        settle: Duration::ZERO,
        reask_empty: crate::jobs::DEFAULT_REASK_EMPTY,
        reach_back: crate::jobs::DEFAULT_REACH_BACK,
        max_rows: None,
    }
}

fn job(name: &str, tz: Option<Tz>, budget: Option<&str>, collections: Vec<Collection>) -> Job {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    Job {
        name: name.to_string(),
        file: PathBuf::from(format!("jobs/{name}.toml")),
        timezone: tz,
        budget_monthly_usd: budget.map(|b| b.parse().unwrap()),
        collections: collections
            .into_iter()
            .map(|mut c| {
                c.job = name.to_string();
                let n = seen.entry(c.name.clone()).or_default();
                *n += 1;
                if *n > 1 {
                    c.name = format!("{}-{n}", c.name);
                }
                c
            })
            .collect(),
        warnings: Vec::new(),
    }
}

fn domains(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}.com")).collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn str_param(v: &str) -> ParamValue {
    ParamValue::Str(v.into())
}

fn date_param(v: &str) -> ParamValue {
    ParamValue::Date(DateSpec::parse(v).unwrap())
}

fn bill(jobs: &[Job], now: &str) -> Bill {
    compute(
        jobs,
        None,
        &Prices::default(),
        AccountCaps::default(),
        at(now),
    )
}

fn berlin() -> Option<Tz> {
    Some(chrono_tz::Europe::Berlin)
}

#[test]
fn cost_per_fire_day_and_month_are_the_list_price_times_the_schedules_fires() {
    let abc = names(&["a.com", "b.com", "c.com"]);
    let jobs = [job(
        "brands",
        None,
        None,
        vec![
            collection("summary", "0 6 * * *", None, &abc, &[]),
            collection("bulk_ranks", "30 8 * * 1-5", None, &abc, &[]),
        ],
    )];
    // 2026-03-01 is a Sunday: 30 days hold 30 mornings and 21 weekdays.
    let b = bill(&jobs, "2026-03-01T00:00:00Z");
    let [summary, ranks] = &b.jobs[0].collections[..] else {
        panic!()
    };
    assert_eq!(
        (summary.calls_per_fire, summary.rows_per_fire),
        (3, 3),
        "one call per target"
    );
    assert_eq!(summary.cost_per_fire, usd("0.06009"));
    assert_eq!(summary.fires_per_month, 30);
    assert_eq!(summary.cost_per_month, usd("1.8027"));
    assert_eq!(summary.cost_per_day, usd("0.06009"));
    assert_eq!(
        summary.next_fire.as_deref(),
        Some("2026-03-01T06:00:00Z"),
        "the first fire after now"
    );
    assert_eq!((ranks.calls_per_fire, ranks.rows_per_fire), (1, 3));
    assert_eq!(ranks.cost_per_fire, usd("0.02009"));
    assert_eq!(ranks.fires_per_month, 21);
    assert_eq!(ranks.cost_per_month, usd("0.42189"));
    assert_eq!(
        ranks.cost_per_day,
        usd("0.01406"),
        "0.42189 / 30, to $0.00001"
    );
    let t = &b.total;
    assert_eq!(t.calls_per_fire, 4);
    assert_eq!(t.cost_per_fire, usd("0.08018"));
    assert_eq!(t.calls_per_month, 3 * 30 + 21);
    assert_eq!(t.cost_per_month, usd("2.22459"));
    assert_eq!(t.pays_per_month, usd("2.22459"));
    assert_eq!(t.pays_per_day, usd("0.07415"));
    // Weekdays hold both collections.
    assert_eq!(
        t.busiest_day,
        Some(DayCost {
            day: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            cost: usd("0.08018")
        })
    );
}

#[test]
fn a_daily_0230_in_berlin_fires_30_times_in_30_days_across_either_dst_change() {
    let jobs = [job(
        "berlin",
        berlin(),
        None,
        vec![collection(
            "summary",
            "30 2 * * *",
            berlin(),
            &names(&["a.com"]),
            &[],
        )],
    )];
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST, 02:30 does not exist that day.
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET, 02:30 happens twice.
    for now in ["2026-03-15T00:00:00Z", "2026-10-15T00:00:00Z"] {
        let b = bill(&jobs, now);
        let c = &b.jobs[0].collections[0];
        assert_eq!(c.fires_per_month, 30, "from {now}");
        assert_eq!(c.cost_per_month, usd("0.6009"));
        assert_eq!(c.cost_per_day, usd("0.02003"));
    }
    // The fire on the spring-forward day runs right after the gap, in Berlin time.
    let b = bill(&jobs, "2026-03-28T12:00:00Z");
    let c = &b.jobs[0].collections[0];
    assert_eq!(c.next_fire.as_deref(), Some("2026-03-29T03:00:00+02:00"));
    assert_eq!(c.next_fire_local.as_deref(), Some("2026-03-29 03:00 CEST"));
    assert_eq!(b.jobs[0].timezone, "Europe/Berlin");
}

#[test]
fn a_job_over_its_monthly_budget_is_flagged_and_each_cap_shows_its_share() {
    let jobs = [
        job(
            "big",
            None,
            Some("1"),
            vec![collection("summary", "0 6 * * *", None, &domains(2), &[])],
        ),
        job(
            "small",
            None,
            Some("10"),
            vec![collection(
                "summary",
                "0 6 * * *",
                None,
                &names(&["other.com"]),
                &[],
            )],
        ),
    ];
    let caps = AccountCaps {
        daily_usd: Some(usd("0.05")),
        monthly_usd: Some(usd("100")),
        account_daily_usd: None,
    };
    let b = compute(
        &jobs,
        None,
        &Prices::default(),
        caps,
        at("2026-03-01T00:00:00Z"),
    );
    // big: 2 × $0.02003 × 30 = $1.2018 of $1; small: $0.6009 of $10.
    let big = &b.jobs[0];
    assert!(big.over_budget);
    assert_eq!(
        big.budget,
        Some(BudgetUse {
            budget: "budget_monthly_usd".into(),
            cap: usd("1"),
            projected: usd("1.2018"),
            share_percent: Some("120.2".parse().unwrap()),
            over: true,
        })
    );
    let small = &b.jobs[1];
    assert!(!small.over_budget);
    assert_eq!(
        small.budget.as_ref().unwrap().share_percent,
        Some("6.0".parse().unwrap())
    );
    // All: $1.8027 a month, $0.06009 a day.
    assert_eq!(
        b.budgets,
        vec![
            BudgetUse {
                budget: "budget.daily_usd".into(),
                cap: usd("0.05"),
                projected: usd("0.06009"),
                share_percent: Some("120.2".parse().unwrap()),
                over: true,
            },
            BudgetUse {
                budget: "budget.monthly_usd".into(),
                cap: usd("100"),
                projected: usd("1.8027"),
                share_percent: Some("1.8".parse().unwrap()),
                over: false,
            },
        ]
    );
    let text = render_text(&b);
    assert!(
        text.contains("budget_monthly_usd $1.00: 120.2% of it used by $1.2018/month  OVER BUDGET"),
        "{text}"
    );
    assert!(
        text.contains("budget.daily_usd $0.05: 120.2% of it used by $0.06009/day  OVER BUDGET"),
        "{text}"
    );
}

#[test]
fn a_daily_history_buys_its_month_until_the_months_first_day_is_over_then_nothing() {
    let jobs = [job(
        "h",
        None,
        None,
        vec![
            collection(
                "history",
                "0 7 * * *",
                None,
                &names(&["a.com"]),
                &[("date_from", date_param("2025-01-01"))],
            ),
            collection(
                "history",
                "0 7 2 * *",
                None,
                &names(&["b.com"]),
                &[("date_from", date_param("2025-01-01"))],
            ),
        ],
    )];
    let b = bill(&jobs, "2026-03-01T00:00:00Z");
    // 2025-01 to 2026-03: 15 months, $0.02 + 15 × $0.00003 = $0.02045 a fire.
    let daily = &b.jobs[0].collections[0];
    assert_eq!(daily.cost_per_fire, usd("0.02045"));
    // A history month's item is the snapshot of its first day (the API's documents):
    // the first fire (March 1st, 07:00) stores March unsettled, the second asks for
    // March alone ($0.02 + $0.00003) and stores it for good, and the other 28 fires of
    // the window buy nothing.
    assert_eq!(daily.pays_per_month, usd("0.04048"), "{daily:#?}");
    // So firing daily is not waste any more: nothing is bought twice.
    assert!(
        b.cheaper.finer_than_data.is_empty(),
        "{:#?}",
        b.cheaper.finer_than_data
    );
}

#[test]
fn a_timeseries_is_flagged_only_when_it_fires_more_often_than_its_group_range() {
    let a = names(&["a.com"]);
    let jobs = [job(
        "ts",
        None,
        None,
        vec![
            // Monthly items, fetched every Monday: 5 fires where 1 does.
            collection(
                "timeseries_summary",
                "0 5 * * 1",
                None,
                &a,
                &[
                    ("group_range", str_param("month")),
                    ("date_from", date_param("-3m")),
                ],
            ),
            // Weekly items fetched weekly, daily items daily: nothing to flag.
            collection(
                "timeseries_summary",
                "0 5 * * 1",
                None,
                &a,
                &[("group_range", str_param("week"))],
            ),
            collection(
                "timeseries_new_lost_summary",
                "0 5 * * *",
                None,
                &a,
                &[("group_range", str_param("day"))],
            ),
            // Weekly items, every day: 30 fires where 30/7 do.
            collection(
                "timeseries_new_lost_summary",
                "0 5 * * *",
                None,
                &a,
                &[
                    ("group_range", str_param("week")),
                    ("date_from", date_param("-4w")),
                ],
            ),
        ],
    )];
    let b = bill(&jobs, "2026-03-01T00:00:00Z");
    let found: Vec<(&str, &str, i64)> = b
        .cheaper
        .finer_than_data
        .iter()
        .map(|f| (f.collection.as_str(), f.data_period, f.fires_per_month))
        .collect();
    assert_eq!(
        found,
        vec![
            ("timeseries_summary", "month", 5),
            ("timeseries_new_lost_summary-2", "week", 30)
        ]
    );
    let monthly = &b.cheaper.finer_than_data[0];
    // 2025-12-01 .. 2026-03-01 by month: 4 periods, $0.02012 a fire; 4 fires too many,
    // each asking for the open month only ($0.02003).
    assert_eq!(monthly.cost_per_fire, usd("0.02012"));
    assert_eq!(monthly.stake_per_month, usd("0.08012"));
    let weekly = &b.cheaper.finer_than_data[1];
    // 2026-02-01 .. 2026-03-01 by ISO week: 5 periods, $0.02015 the first fire. Later
    // fires ask for the open week ($0.02003), on Mondays for the week just ended too
    // ($0.02006, 5 of them); what the data needs is 30/7 fires at the first's cost.
    assert_eq!(weekly.cost_per_fire, usd("0.02015"));
    assert_eq!(weekly.needed_per_month, "4.29".parse::<Decimal>().unwrap());
    let pays = usd("0.02015").decimal()
        + Decimal::from(5) * usd("0.02006").decimal()
        + Decimal::from(24) * usd("0.02003").decimal();
    assert_eq!(
        weekly.stake_per_month,
        round5(pays - usd("0.02015").decimal() * Decimal::from(30) / Decimal::from(7))
    );
    assert_eq!(weekly.stake_per_month, usd("0.51481"));
}

#[test]
fn summary_and_bulk_new_lost_more_often_than_daily_cost_no_more_and_a_daily_fire_across_dst_is_daily()
 {
    let london = Some(chrono_tz::Europe::London);
    let a = names(&["a.com"]);
    let jobs = [
        job(
            "h",
            None,
            None,
            vec![
                collection("summary", "0 * * * *", None, &a, &[]),
                collection("bulk_new_lost_backlinks", "0 */12 * * *", None, &a, &[]),
            ],
        ),
        // 00:30 London is 00:30Z in winter and 23:30Z the day before in summer: on
        // 2026-03-29 two fires fall on one UTC day, yet it is one fire a day (and 31
        // in the 30 days: the window gains the hour the clocks skip).
        job(
            "london",
            london,
            None,
            vec![collection("summary", "30 0 * * *", london, &a, &[])],
        ),
    ];
    let b = bill(&jobs, "2026-03-15T00:00:00Z");
    let found: Vec<(&str, &str, i64, Usd)> = b
        .cheaper
        .finer_than_data
        .iter()
        .map(|f| {
            (
                f.job.as_str(),
                f.collection.as_str(),
                f.fires_per_month,
                f.stake_per_month,
            )
        })
        .collect();
    // Their data is daily, and the later fires of a day reuse its first answer: the
    // extra fires buy nothing, so they waste nothing.
    assert_eq!(found, vec![]);
    let hourly = &b.jobs[0].collections[0];
    assert_eq!(hourly.fires_per_month, 720);
    assert_eq!(
        hourly.cost_per_month - hourly.pays_per_month,
        hourly.cost_per_fire * (720 - 30),
        "every hour but the first of each of the 30 days is reused"
    );
    assert_eq!(b.jobs[1].collections[0].fires_per_month, 31);
}

#[test]
fn the_same_target_endpoint_and_parameters_in_two_jobs_the_same_day_is_bought_once() {
    let first = job(
        "first",
        None,
        None,
        vec![
            collection(
                "summary",
                "0 6 * * *",
                None,
                &names(&["a.com", "b.com"]),
                &[],
            ),
            collection(
                "bulk_ranks",
                "0 6 * * *",
                None,
                &names(&["a.com", "b.com"]),
                &[],
            ),
        ],
    );
    let second = job(
        "second",
        None,
        None,
        vec![
            collection(
                "summary",
                "0 7 * * *",
                None,
                &names(&["b.com", "c.com"]),
                &[],
            ),
            collection(
                "bulk_ranks",
                "0 7 * * *",
                None,
                &names(&["b.com", "c.com"]),
                &[],
            ),
            // Other parameters: another answer, bought on its own.
            collection(
                "summary",
                "0 7 * * *",
                None,
                &names(&["a.com"]),
                &[("include_subdomains", ParamValue::Bool(false))],
            ),
        ],
    );
    let jobs = [first, second];
    let b = bill(&jobs, "2026-03-01T00:00:00Z");
    type Found<'a> = (&'a str, &'a str, usize, Vec<String>, i64, Usd);
    let found: Vec<Found> = b
        .cheaper
        .bought_once
        .iter()
        .map(|o| {
            (
                o.job.as_str(),
                o.collection.as_str(),
                o.targets,
                o.bought_by.clone(),
                o.fires,
                o.saves_per_month,
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            // b.com's summary call, 30 times.
            (
                "second",
                "summary",
                1,
                vec!["first/summary".to_string()],
                30,
                usd("0.6009")
            ),
            // The bulk call for [b.com, c.com] is not the one bought for [a.com,
            // b.com]: a bulk call is reused only whole, as the executor reuses it.
        ]
    );
    let second = &b.jobs[1];
    assert_eq!(second.collections[0].cost_per_month, usd("1.2018"));
    assert_eq!(second.collections[0].pays_per_month, usd("0.6009"));
    assert_eq!(second.total.bought_once_per_month, usd("0.6009"));
    // second: summary 1.2018 + bulk_ranks 0.6018 + summary-2 0.6009, less 0.6009.
    assert_eq!(second.total.cost_per_month, usd("2.4045"));
    assert_eq!(second.total.pays_per_month, usd("1.8036"));
    assert_eq!(b.total.bought_once_per_month, usd("0.6009"));
    assert_eq!(
        b.total.pays_per_month,
        b.total.cost_per_month - usd("0.6009")
    );
    assert_eq!(b.cheaper.bought_once_per_month, usd("0.6009"));

    // Asked for the first job only, the reuse by the second is still shown.
    let only = compute(
        &jobs,
        Some("first"),
        &Prices::default(),
        AccountCaps::default(),
        at("2026-03-01T00:00:00Z"),
    );
    assert_eq!(only.jobs.len(), 1);
    assert_eq!(only.cheaper.bought_once.len(), 1);
    assert_eq!(only.total.bought_once_per_month, Usd::ZERO);
}

#[test]
fn a_collection_firing_twice_a_day_reuses_its_own_first_answer_of_the_day() {
    // The executor reuses an answer bought the same UTC day, the collection's own
    // included: the second fire costs nothing, so nothing is wasted either.
    let jobs = [job(
        "twice",
        None,
        None,
        vec![collection(
            "summary",
            "0 6,18 * * *",
            None,
            &names(&["a.com"]),
            &[],
        )],
    )];
    let b = bill(&jobs, "2026-03-01T00:00:00Z");
    assert_eq!(b.cheaper.bought_once.len(), 1);
    let once = &b.cheaper.bought_once[0];
    assert_eq!(once.bought_by, vec!["twice/summary".to_string()]);
    assert_eq!((once.fires, once.saves_per_month), (30, usd("0.6009")));
    assert_eq!(b.total.cost_per_month, usd("1.2018"));
    assert_eq!(b.total.pays_per_month, usd("0.6009"));
    assert!(b.cheaper.finer_than_data.is_empty());
}

#[test]
fn a_daily_summary_of_10000_targets_is_shown_beside_its_bulk_alternative() {
    let jobs = [job(
        "many",
        None,
        None,
        vec![
            collection("summary", "0 6 * * *", None, &domains(10_000), &[]),
            collection("summary", "0 6 * * *", None, &domains(99), &[]),
        ],
    )];
    let b = bill(&jobs, "2026-03-01T00:00:00Z");
    let [a] = &b.cheaper.bulk_alternatives[..] else {
        panic!("only the summary of 100 targets or more")
    };
    assert_eq!(a.targets, 10_000);
    // 10,000 calls × $0.02003.
    assert_eq!(a.summary_per_day, usd("200.30"));
    // 3 endpoints × 10 calls × $0.02 + 30,000 rows × $0.00003.
    assert_eq!(a.bulk_per_day, usd("1.50"));
    assert_eq!(a.summary_per_month, usd("6009"));
    assert_eq!(a.bulk_per_month, usd("45"));
    assert_eq!(a.difference_per_month, usd("5964"));
    let text = render_text(&b);
    assert!(
        text.contains(
            "summary for 10,000 targets daily: $200.30/day; bulk_ranks + bulk_backlinks + \
             bulk_referring_domains give rank, backlinks and referring domains for $1.50/day \
             ($5964.00/month less)"
        ),
        "{text}"
    );
}

#[test]
fn the_account_price_list_and_a_flat_price_per_call_are_used_when_given() {
    let jobs = [job(
        "p",
        None,
        None,
        vec![collection("summary", "0 6 * * *", None, &domains(2), &[])],
    )];
    let now = at("2026-03-01T00:00:00Z");
    let mut prices = Prices::default();
    prices.per_endpoint.insert(
        Endpoint::Summary,
        crate::api::prices::Rate {
            per_request: usd("0.01"),
            per_row: usd("0.0001"),
        },
    );
    prices.as_of = Some(Utc.with_ymd_and_hms(2026, 2, 27, 10, 0, 0).unwrap());
    let b = compute(&jobs, None, &prices, AccountCaps::default(), now);
    assert_eq!(b.jobs[0].collections[0].cost_per_fire, usd("0.0202"));
    assert_eq!(b.prices, "the account's price list of 2026-02-27 10:00 UTC");
    prices.flat_per_call = Some(usd("0.05"));
    let b = compute(&jobs, None, &prices, AccountCaps::default(), now);
    assert_eq!(b.jobs[0].collections[0].cost_per_month, usd("3"));
}

#[test]
fn the_json_form_writes_money_as_exact_decimal_strings() {
    let jobs = [job(
        "j",
        None,
        Some("25"),
        vec![collection(
            "bulk_ranks",
            "30 8 * * 1-5",
            None,
            &domains(3),
            &[],
        )],
    )];
    let b = bill(&jobs, "2026-03-01T00:00:00Z");
    let v = serde_json::to_value(&b).unwrap();
    let c = &v["jobs"][0]["collections"][0];
    assert_eq!(c["cost_per_fire"], "0.02009");
    assert_eq!(c["cost_per_month"], "0.42189");
    assert_eq!(c["cost_per_day"], "0.01406");
    assert_eq!(c["fires_per_month"], 21);
    assert_eq!(c["endpoint"], "bulk_ranks");
    assert_eq!(v["jobs"][0]["budget"]["share_percent"], "1.7");
    assert_eq!(v["total"]["pays_per_month"], "0.42189");
    assert_eq!(v["now"], "2026-03-01T00:00:00Z");
}

#[test]
fn the_text_lists_each_collection_and_the_totals() {
    let jobs = [job(
        "brands",
        berlin(),
        None,
        vec![collection(
            "summary",
            "0 6 * * *",
            berlin(),
            &domains(3),
            &[],
        )],
    )];
    let b = bill(&jobs, "2026-03-01T00:00:00Z");
    let text = render_text(&b);
    for line in [
        "job brands (Europe/Berlin)",
        "summary (3 calls)",
        "2026-03-01 06:00 CET",
        "all jobs: one fire of every collection: 3 calls, estimated cost $0.06009",
        "all jobs: 90 calls in 30 days; projected $0.06009/day, $1.8027/month",
        "prices: list price $0.02 per call + $0.00003 per row",
        "nothing found",
    ] {
        assert!(text.contains(line), "`{line}` in:\n{text}");
    }
}

#[test]
fn history_and_timeseries_fires_pay_only_for_periods_not_stored_from_what_the_database_holds() {
    let daily = || {
        job(
            "d",
            None,
            None,
            vec![collection(
                "timeseries_new_lost_summary",
                "0 5 * * *",
                None,
                &names(&["a.com"]),
                &[
                    ("group_range", str_param("day")),
                    ("date_from", date_param("-30d")),
                ],
            )],
        )
    };
    let now: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let prices = Prices::default();
    // A new database: the first fire buys 31 days ($0.02093), each later one the day
    // that was open and the new one ($0.02006).
    let fresh = compute(&[daily()], None, &prices, AccountCaps::default(), now);
    let c = &fresh.jobs[0].collections[0];
    assert_eq!(c.fires_per_month, 30);
    assert_eq!(c.cost_per_fire, usd("0.02093"));
    assert_eq!(c.cost_per_month, usd("0.6279"));
    assert_eq!(c.pays_per_month, usd("0.60267"), "$0.02093 + 29 × $0.02006");
    assert_eq!(c.stored_per_month, usd("0.02523"));
    assert_eq!(fresh.total.pays_per_month, usd("0.60267"));
    // A database holding January and February: the first fire buys the open day only.
    let mut held = Stored::default();
    let mut days = crate::warehouse::coverage::Days::default();
    days.add("2026-01-01".parse().unwrap(), "2026-02-28".parse().unwrap());
    let planned = plan_collection(&daily().collections[0], now.date_naive());
    held.insert_stored(
        crate::api::Endpoint::TimeseriesNewLostSummary,
        &crate::warehouse::coverage::options(&planned[0].task),
        "a.com",
        days,
        crate::warehouse::coverage::Days::default(),
        None,
    );
    let stored = compute_with_stored(
        &[daily()],
        None,
        &prices,
        AccountCaps::default(),
        now,
        held,
        &crate::plan::listing::ListingSizes::default(),
    );
    let c = &stored.jobs[0].collections[0];
    assert_eq!(c.pays_per_month, usd("0.60177"), "$0.02003 + 29 × $0.02006");
    // refetch = "always" pays the whole range every time.
    let mut always = daily();
    always.collections[0].refetch = crate::jobs::Refetch::Always;
    let full = compute(&[always], None, &prices, AccountCaps::default(), now);
    assert_eq!(full.jobs[0].collections[0].pays_per_month, usd("0.6279"));
}

#[test]
fn the_settle_time_costs_what_asking_again_for_unsettled_days_adds_to_the_bill() {
    let daily = |settle: Duration| {
        let mut c = collection(
            "timeseries_new_lost_summary",
            "0 6 * * *",
            None,
            &names(&["a.com"]),
            &[
                ("group_range", str_param("day")),
                ("date_from", date_param("-30d")),
            ],
        );
        c.settle = settle;
        bill(&[job("ts", None, None, vec![c])], "2026-03-01T00:00:00Z")
    };
    let week = daily(Duration::from_secs(7 * 86_400));
    let none = daily(Duration::ZERO);
    let (w, n) = (&week.jobs[0].collections[0], &none.jobs[0].collections[0]);
    // Without a settle time, nothing is asked again and nothing is its cost.
    assert_eq!(n.settle_per_month, Usd::ZERO, "{n:#?}");
    // With seven days, every fire asks again for the days not settled: the difference
    // between the two bills, and more than nothing.
    assert!(w.settle_per_month > Usd::ZERO, "{w:#?}");
    assert_eq!(w.settle_per_month, w.pays_per_month - n.pays_per_month);
    assert_eq!(week.total.settle_per_month, w.settle_per_month);
    let text = render_text(&week);
    assert!(
        text.contains(&format!(
            "of which asking again for periods not yet settled (settle): {}/month",
            w.settle_per_month
        )),
        "{text}"
    );
}

/// A daily backlinks listing of two domains, at most `max_rows` rows each.
fn daily_backlinks(max_rows: u64, budget: &str) -> Job {
    let mut c = collection(
        "backlinks",
        "0 4 * * *",
        None,
        &names(&["a.com", "b.com"]),
        &[],
    );
    c.max_rows = Some(max_rows);
    job("links", None, Some(budget), vec![c])
}

/// a.com: 52,000 backlinks (12,000 nofollow) from 3,100 domains; b.com: 8,000 (2,000
/// nofollow) from 900.
fn summary_counts() -> ListingSizes {
    let mut sizes = ListingSizes::default();
    for (target, backlinks, nofollow, domains) in [
        ("a.com", 52_000, 12_000, 3_100),
        ("b.com", 8_000, 2_000, 900),
    ] {
        sizes.record_counts(
            target,
            crate::plan::listing::TargetCounts {
                backlinks: Some(backlinks),
                backlinks_nofollow: Some(nofollow),
                referring_domains: Some(domains),
                crawled_pages: None,
            },
        );
    }
    sizes
}

fn bill_with_sizes(jobs: &[Job], sizes: &ListingSizes) -> Bill {
    compute_with_stored(
        jobs,
        None,
        &Prices::default(),
        AccountCaps::default(),
        at("2026-03-01T00:00:00Z"),
        Stored::default(),
        sizes,
    )
}

#[test]
fn a_listing_is_billed_at_its_stored_size_within_max_rows_and_at_max_rows_when_unsized() {
    // Nothing stored: each listing is planned at max_rows.
    let nothing = bill_with_sizes(&[daily_backlinks(20_000, "1000")], &ListingSizes::default());
    let c = &nothing.jobs[0].collections[0];
    assert_eq!((c.calls_per_fire, c.rows_per_fire), (40, 40_000));
    let l = c.listing.as_ref().unwrap();
    assert_eq!(l.unsized_listings, 2);
    assert!(l.sized.is_empty());
    // Sized by the summary: a.com's 52,000 cut to 20,000, b.com's 8,000 whole: 28
    // calls, 28,000 rows: 28 × $0.02 + 28,000 × $0.00003 = $1.40 a fire.
    let sized = bill_with_sizes(&[daily_backlinks(20_000, "1000")], &summary_counts());
    let c = &sized.jobs[0].collections[0];
    assert_eq!((c.calls_per_fire, c.rows_per_fire), (28, 28_000));
    assert_eq!(c.cost_per_fire, usd("1.40"));
    assert_eq!(c.cost_per_month, usd("42.00"));
    let l = c.listing.as_ref().unwrap();
    assert_eq!(l.sized.get("summary.backlinks"), Some(&2));
    assert_eq!(l.full_rows_per_fire, 60_000);
    // 60 calls, 60,000 rows: $3.00 a fire in full.
    assert_eq!(l.full_cost_per_fire, usd("3.00"));
    assert!(l.cut_by_max_rows);
    // Under its budget of $1,000 a month: not flagged.
    assert!(sized.cheaper.large_listings.is_empty());
    let text = render_text(&sized);
    assert!(
        text.contains("backlinks: 2 listings: 2 by summary.backlinks; in full 60,000 rows a fire, $3.00; max_rows = 20,000 cuts it to 28,000 rows"),
        "{text}"
    );
}

#[test]
fn a_listing_over_its_budget_in_full_is_flagged_with_cheaper_shapes_sized_from_the_summary() {
    // $3.00 a fire in full, 30 fires: $90 a month against a job budget of $20.
    let b = bill_with_sizes(&[daily_backlinks(100_000, "20")], &summary_counts());
    let [large] = b.cheaper.large_listings.as_slice() else {
        panic!("one large listing: {:#?}", b.cheaper.large_listings);
    };
    assert_eq!(large.budget, "budget_monthly_usd");
    assert_eq!(large.cap_per_month, usd("20"));
    assert_eq!(large.fires_per_month, 30);
    assert_eq!(large.full_rows_per_fire, 60_000);
    assert_eq!(large.full_cost_per_month, usd("90.00"));
    assert!(!large.cut_by_max_rows);
    let shape = |prefix: &str| {
        large
            .shapes
            .iter()
            .find(|s| s.change.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {:#?}", large.shapes))
    };
    // One link per domain: 3,100 + 900 rows in 4 + 1 pages: (5 × $0.02 + 4,000 ×
    // $0.00003) × 30 = $6.60.
    let one = shape("mode = \"one_per_domain\"");
    assert_eq!(
        (one.rows_per_fire, one.cost_per_month),
        (4_000, usd("6.60"))
    );
    assert!(one.fits);
    // Dofollow only: 40,000 + 6,000 rows in 40 + 6 pages: (46 × $0.02 + 46,000 ×
    // $0.00003) × 30 = $69.00, still over.
    let dofollow = shape("filters = [[\"dofollow\", \"=\", true]]");
    assert_eq!(
        (dofollow.rows_per_fire, dofollow.cost_per_month),
        (46_000, usd("69.00"))
    );
    assert!(!dofollow.fits);
    // Weekly: $3.00 × 30/7 = $12.85714; monthly $3.00.
    let weekly = shape("schedule = \"0 4 * * 1\"");
    assert_eq!(weekly.cost_per_month, usd("12.85714"));
    assert!(weekly.fits);
    let monthly = shape("schedule = \"0 4 2 * *\"");
    assert_eq!(monthly.cost_per_month, usd("3.00"));
    // The most rows a listing may buy within $20 a month: $20 / 30 fires / 2 listings =
    // $0.33333 a listing, a page of 1,000 costs $0.05: 6 pages, 6,000 rows.
    let cut = shape("max_rows = 6000");
    assert_eq!(cut.rows_per_fire, 12_000);
    assert!(cut.fits, "{cut:?}");
    let text = render_text(&b);
    assert!(
        text.contains("links/backlinks (backlinks, `0 4 * * *`): the whole listing is 60,000 rows a fire, $90.00/month at 30 fires, over budget_monthly_usd $20.00/month"),
        "{text}"
    );
    assert!(
        text.contains("mode = \"one_per_domain\": 4,000 rows a fire, $6.60/month (fits)"),
        "{text}"
    );
    // The strictest budget is the one compared: an account daily cap of $0.50 is $15
    // a month.
    let caps = AccountCaps {
        daily_usd: Some(usd("0.50")),
        ..AccountCaps::default()
    };
    let b = compute_with_stored(
        &[daily_backlinks(100_000, "20")],
        None,
        &Prices::default(),
        caps,
        at("2026-03-01T00:00:00Z"),
        Stored::default(),
        &summary_counts(),
    );
    assert_eq!(b.cheaper.large_listings[0].budget, "budget.daily_usd × 30");
    assert_eq!(b.cheaper.large_listings[0].cap_per_month, usd("15.00"));
    // Without any budget there is nothing to be over.
    let mut free = daily_backlinks(100_000, "20");
    free.budget_monthly_usd = None;
    assert!(
        bill_with_sizes(&[free], &summary_counts())
            .cheaper
            .large_listings
            .is_empty()
    );
}
