//! docs/pandas.md's recipe, run as written as the reader role on the demo's data: money
//! comes out as exact Decimals, dates as datetime64, and a groupby on `options_key` works.

use serde_json::Value;

use crate::dbt::{bi_scene, python_env};

/// The first ```python block of docs/pandas.md.
fn recipe() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/pandas.md"))
        .expect("docs/pandas.md");
    let start = doc.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + doc[start..].find("\n```").expect("the block's end");
    doc[start..end].to_string()
}

/// What the test reads of the recipe's frames, as JSON on stdout.
const REPORT: &str = r#"
import json as _json
print(_json.dumps({
    "spend_dtypes": {c: str(t) for c, t in spend.dtypes.items()},
    "cost_types": sorted({type(v).__name__ for v in spend["cost_usd"]}),
    "running_usd": [str(v) for v in spend["running_usd"]],
    "latest_dtypes": {c: str(t) for c, t in latest.dtypes.items()},
    "groups": {k: int(v) for k, v in backlinks_by_options.items()},
    "rows": len(latest),
}))
"#;

#[tokio::test]
async fn the_pandas_recipe_reads_exact_money_real_dates_and_groups_by_the_options_key() {
    let Some(python) = python_env() else {
        return;
    };
    let sc = bi_scene("pandas").await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("recipe.py");
    std::fs::write(&script, format!("{}\n{REPORT}", recipe())).unwrap();
    let out = tokio::process::Command::new(python.join("bin/python"))
        .arg(&script)
        .env("DATABASE_URL", sc.role.url())
        .output()
        .await
        .expect("running python");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the recipe failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text}"));

    assert_eq!(r["spend_dtypes"]["day"], "datetime64[ns]", "{r}");
    assert_eq!(r["spend_dtypes"]["calls"], "Int64", "{r}");
    assert_eq!(r["cost_types"], serde_json::json!(["Decimal"]), "{r}");
    assert_eq!(
        r["running_usd"],
        serde_json::json!(["0.07", "0.14021"]),
        "an exact running total: {r}"
    );
    assert_eq!(r["latest_dtypes"]["collected_on"], "datetime64[ns]", "{r}");
    assert_eq!(
        r["latest_dtypes"]["collected_at"], "datetime64[ns, UTC]",
        "{r}"
    );
    assert_eq!(r["latest_dtypes"]["backlinks"], "Int64", "{r}");
    assert_eq!(r["latest_dtypes"]["options_key"], "object", "{r}");
    let groups = r["groups"].as_object().unwrap();
    assert_eq!(groups.len(), 2, "one group per option set: {r}");
    for key in groups.keys() {
        let options: Value = serde_json::from_str(key).expect("a key is the options' JSON");
        assert!(options["rank_scale"].is_string(), "{key}");
    }
    assert!(r["rows"].as_u64().unwrap() >= 4, "{r}");
}
