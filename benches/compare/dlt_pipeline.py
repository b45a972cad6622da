"""A generic REST pipeline written with dlt, for `cargo bench --bench pipeline` to
measure beside linkledger against the same stand-in, in the same run
(`LINKLEDGER_BENCH_DLT=/path/to/python`, a Python with `dlt[postgres]` installed).

It does what a generic pipeline does with this API: POSTs one task per request, 30 at
once (the account's requests in flight), and hands each answer's results to dlt, which
infers a schema, normalizes the nested JSON into tables and loads them into
PostgreSQL. No ledger, no budgets, no retries, no raw bodies kept.

    python dlt_pipeline.py ENDPOINT TASKS_JSON

Environment: LINKLEDGER_BENCH_BASE_URL (the stand-in's `.../v3`),
DESTINATION__POSTGRES__CREDENTIALS (the database), DLT_DATA_DIR (dlt's working files).
Prints one JSON line: {"rows": rows loaded}.
"""

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import dlt
import requests
from requests.adapters import HTTPAdapter

IN_FLIGHT = 30


def main() -> None:
    endpoint, tasks_path = sys.argv[1], sys.argv[2]
    with open(tasks_path) as f:
        tasks = json.load(f)
    url = f"{os.environ['LINKLEDGER_BENCH_BASE_URL']}/backlinks/{endpoint}/live"
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=IN_FLIGHT))

    def fetch(task):
        answer = session.post(url, json=[task], auth=("sandbox", "sandbox"))
        answer.raise_for_status()
        return answer.json()

    @dlt.resource(name=endpoint, write_disposition="append")
    def answers():
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            for body in pool.map(fetch, tasks):
                for task in body.get("tasks") or []:
                    for result in task.get("result") or []:
                        # A list endpoint's rows are its items; a summary is one row.
                        if isinstance(result.get("items"), list):
                            for item in result["items"]:
                                yield {"target": result.get("target"), **item}
                        else:
                            yield result

    pipeline = dlt.pipeline(
        pipeline_name=f"linkledger_bench_{endpoint}",
        destination="postgres",
        dataset_name="dlt_bench",
    )
    pipeline.run(answers())
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print(json.dumps({"rows": sum(counts.values())}))


if __name__ == "__main__":
    main()
