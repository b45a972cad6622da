//! The cheaper way: waste the bill can see. Schedules finer than the data changes
//! (*finer than the data*), and summary collections of many targets beside the bulk
//! endpoints that give rank, backlinks and referring domains for less (*bulk
//! alternative*). The definitions are the bill's (`plan::bill`).

use super::*;

/// The period of the data a collection buys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Grain {
    Day,
    Week,
    Month,
}

impl Grain {
    pub(super) fn name(self) -> &'static str {
        match self {
            Grain::Day => "day",
            Grain::Week => "week",
            Grain::Month => "month",
        }
    }

    /// The period a day falls in.
    fn period(self, d: NaiveDate) -> (i32, u32) {
        match self {
            Grain::Day => (d.year(), d.ordinal()),
            Grain::Week => (d.iso_week().year(), d.iso_week().week()),
            Grain::Month => (d.year(), d.month()),
        }
    }

    /// Fires a month of this data needs.
    fn needed_per_month(self) -> Decimal {
        match self {
            Grain::Day => Decimal::from(WINDOW_DAYS),
            Grain::Week => Decimal::from(WINDOW_DAYS) / Decimal::from(7),
            Grain::Month => Decimal::ONE,
        }
    }
}

/// How often the data of `c` changes, and why.
fn grain(c: &Collection, today: NaiveDate) -> (Grain, String) {
    match c.endpoint {
        Endpoint::History => (
            Grain::Month,
            "history has one item per month: a month bought once holds it".into(),
        ),
        Endpoint::TimeseriesSummary | Endpoint::TimeseriesNewLostSummary => {
            let group = c
                .request_params(today)
                .get("group_range")
                .and_then(serde_json::Value::as_str)
                .and_then(GroupRange::parse)
                .unwrap_or(GroupRange::Month);
            let grain = match group {
                GroupRange::Day => Grain::Day,
                GroupRange::Week => Grain::Week,
                GroupRange::Month | GroupRange::Year => Grain::Month,
            };
            (
                grain,
                format!(
                    "group_range = \"{}\" gives one item per {}",
                    group.name(),
                    group.name()
                ),
            )
        }
        Endpoint::BulkNewLostBacklinks | Endpoint::BulkNewLostReferringDomains => (
            Grain::Day,
            "new and lost links are counted per day".into(),
        ),
        _ => (
            Grain::Day,
            "it is stored once per target and UTC day: a second fetch the same day replaces the first".into(),
        ),
    }
}

/// A schedule at the collection's own minute and hour (else 06:00) that fires once
/// per `grain`.
pub(super) fn suggested_schedule(c: &Collection, grain: Grain) -> String {
    let fields: Vec<&str> = c.schedule.as_str().split_whitespace().collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (minute, hour) = match fields.as_slice() {
        [m, h, _, _, _] if numeric(m) && numeric(h) => (*m, *h),
        _ => ("0", "6"),
    };
    match grain {
        Grain::Day => format!("{minute} {hour} * * *"),
        Grain::Week => format!("{minute} {hour} * * 1"),
        Grain::Month => format!("{minute} {hour} 2 * *"),
    }
}

fn finer_than_data(l: &Line, jobs: &[Job], today: NaiveDate) -> Option<FinerThanData> {
    let c = l.collection;
    let (grain, why) = grain(c, today);
    // Periods on the schedule's own calendar: a daily fire whose UTC time shifts by an
    // hour at a DST change may land twice on one UTC day, and is still daily.
    let tz = c.schedule.timezone();
    let local_day = |t: &DateTime<Utc>| match tz {
        Some(tz) => t.with_timezone(&tz).date_naive(),
        None => t.date_naive(),
    };
    let mut periods = BTreeSet::new();
    let twice_in_a_period = l
        .fires
        .iter()
        .any(|f| !periods.insert(grain.period(local_day(f))));
    let fires = Decimal::from(l.fires_per_month());
    let needed = grain.needed_per_month();
    // What the line pays beyond the fires the data needs: extra fires that same-day
    // reuse makes free (an hourly summary) cost nothing more, and less than one fire's
    // worth is the window's edge, not waste.
    let stake = round5(
        (l.cost_per_month() - l.saves - l.stored_saves).decimal()
            - l.cost_per_fire.decimal() * needed,
    );
    if !twice_in_a_period || fires <= needed || stake <= l.cost_per_fire {
        return None;
    }
    Some(FinerThanData {
        job: jobs[l.job].name.clone(),
        collection: c.name.clone(),
        endpoint: c.endpoint,
        schedule: c.schedule.as_str().to_string(),
        data_period: grain.name(),
        why,
        fires_per_month: l.fires_per_month(),
        needed_per_month: needed.round_dp(2).normalize(),
        cost_per_fire: l.cost_per_fire,
        stake_per_month: stake,
        suggested_schedule: suggested_schedule(c, grain),
    })
}

fn bulk_alternative(
    l: &Line,
    jobs: &[Job],
    prices: &Prices,
    today: NaiveDate,
) -> Option<BulkAlternative> {
    let c = l.collection;
    if c.endpoint != Endpoint::Summary
        || c.targets.len() < SUMMARY_BULK_THRESHOLD
        || l.fires.is_empty()
    {
        return None;
    }
    let per_fire: Usd = BULK_ALTERNATIVE
        .iter()
        .map(|&endpoint| {
            // Only the parameters the bulk endpoint takes (rank_scale for bulk_ranks).
            let params = Params(
                c.params
                    .0
                    .iter()
                    .filter(|(k, _)| endpoint.param(k).is_some())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            let alt = Collection {
                endpoint,
                params,
                ..c.clone()
            };
            cost_of(&plan_collection(&alt, today), prices)
        })
        .sum();
    let summary_per_month = l.cost_per_month();
    let bulk_per_month = per_fire * l.fires_per_month();
    Some(BulkAlternative {
        job: jobs[l.job].name.clone(),
        collection: c.name.clone(),
        targets: c.targets.len(),
        fires_per_month: l.fires_per_month(),
        summary_per_day: per_day(summary_per_month),
        summary_per_month,
        endpoints: BULK_ALTERNATIVE.to_vec(),
        bulk_per_day: per_day(bulk_per_month),
        bulk_per_month,
        difference_per_month: summary_per_month - bulk_per_month,
    })
}

pub(super) fn cheaper(
    jobs: &[Job],
    lines: &[Line],
    shown: &[&Line],
    prices: &Prices,
    today: NaiveDate,
) -> Cheaper {
    let mut out = Cheaper::default();
    for l in shown {
        if let Some(f) = finer_than_data(l, jobs, today) {
            out.finer_than_data_per_month += f.stake_per_month;
            out.finer_than_data.push(f);
        }
        if let Some(b) = bulk_alternative(l, jobs, prices, today) {
            out.bulk_alternatives.push(b);
        }
    }
    // Reuse concerns the job shown when it either reuses or is reused from.
    let shown_jobs: BTreeSet<usize> = shown.iter().map(|l| l.job).collect();
    for l in lines {
        if l.saves.is_zero() && l.reused_targets.is_empty() {
            continue;
        }
        let involved = shown_jobs.contains(&l.job)
            || l.bought_by
                .iter()
                .any(|b| shown_jobs.contains(&lines[*b].job));
        if !involved {
            continue;
        }
        out.bought_once_per_month += l.saves;
        out.bought_once.push(BoughtOnce {
            job: jobs[l.job].name.clone(),
            collection: l.collection.name.clone(),
            endpoint: l.collection.endpoint,
            targets: l.reused_targets.len(),
            bought_by: l.bought_by.iter().map(|b| lines[*b].label(jobs)).collect(),
            fires: l.reuse_fires,
            saves_per_month: l.saves,
        });
    }
    out
}
