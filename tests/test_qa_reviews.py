"""Proves the calibration path on a real folder bucket, a real Dagster instance and the real
jobs: chats run through the pipeline, a QA reviewer's CSV dropped under reviews/ is found by
the `qa_review_files` sensor, whose run loads its good rows into `qa_reviews` and its bad
rows with their reasons into `review_errors`, and computes `scorecard_calibration` with the
overall figures as the asset's metadata. An unchanged file is not loaded again; a changed
one replaces its rows; a reanalysis with another prompt version makes the sensor compute the
calibration again, now with a row per prompt version. Review files are never modified."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, RunRequest, SensorResult, SkipReason, build_sensor_context

from cscoach_pipeline.defs.calibration.sensors import load_qa_reviews_job
from cscoach_pipeline.defs.warehouse import tables
from tests.support.pipeline import PipelineHarness

GOOD = (
    "Agent: Good morning, thank you for calling Acme, my name is Mina. How can I help?\n"
    "Customer: My parcel is late and I am upset.\n"
    "Agent: I am so sorry about that, I understand. Could you confirm your order number?\n"
    "Customer: It is A-55.\n"
    "Agent: Thank you. I have checked: it arrives tomorrow and I have refunded the shipping.\n"
    "Customer: Great, thank you, that solves it.\n"
    "Agent: You're welcome. Is there anything else I can help with? Have a lovely day.\n"
)
POOR = (
    "Agent: Yeah?\n"
    "Customer: My parcel is late again, this is the third time.\n"
    "Agent: Not my problem, call the courier.\n"
    "Customer: That is not acceptable, it is still not resolved.\n"
)


class ReviewHarness:
    def __init__(self, harness: PipelineHarness) -> None:
        self.pipeline = harness
        self.sensor = harness.defs.get_sensor_def("qa_review_files")
        self.cursor: str | None = None

    def drop_review(self, name: str, text: str) -> None:
        assert self.pipeline.backend is not None
        self.pipeline.backend.put(f"reviews/{name}", text.encode())

    def tick(self) -> list[RunRequest] | SkipReason:
        context = build_sensor_context(
            instance=self.pipeline.instance,
            cursor=self.cursor,
            resources=self.pipeline.resources,
            definitions=self.pipeline.defs,
        )
        result = self.sensor(context)
        if isinstance(result, SkipReason):
            return result
        assert isinstance(result, SensorResult)
        self.cursor = result.cursor
        return list(result.run_requests or [])

    def run(self, request: RunRequest) -> None:
        job = self.pipeline.defs.resolve_job_def(load_qa_reviews_job.name)
        result = job.execute_in_process(
            instance=self.pipeline.instance,
            asset_selection=request.asset_selection,
            tags=request.tags,
        )
        assert result.success

    def metadata(self, asset: str) -> dict:
        event = self.pipeline.instance.get_latest_materialization_event(AssetKey(asset))
        assert event is not None and event.asset_materialization is not None
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _ids(harness: PipelineHarness) -> dict[str, str]:
    rows = harness.warehouse.fetch_rows(tables.consultations)
    return {Path(r["source_key"]).name: r["consultation_id"] for r in rows}


def _machine(harness: PipelineHarness, cid: str, question: str) -> str:
    rows = harness.warehouse.fetch_rows(
        tables.scorecard_answers, consultation_id=cid, question_id=question
    )
    return rows[0]["answer"]


def test_reviews_load_and_calibrate(tmp_path: Path) -> None:
    harness = PipelineHarness(root=tmp_path / "run")
    harness.process_batch({"good.txt": GOOD.encode(), "poor.txt": POOR.encode()})
    ids = _ids(harness)
    assert set(ids) == {"good.txt", "poor.txt"}
    reviews = ReviewHarness(harness)
    assert isinstance(reviews.tick(), SkipReason)  # nothing reviewed, nothing to do

    greeting_good = _machine(harness, ids["good.txt"], "greeting")
    review = (
        "source_key,reviewer,question_id,answer,comment\n"
        f"good.txt,qa-kim,greeting,{greeting_good},\n"
        "good.txt,qa-kim,empathy,yes,apologised and understood\n"
        "incoming/poor.txt,qa-kim,greeting,no,\n"
        "incoming/poor.txt,qa-kim,empathy,no,call me on 010-9876-5432\n"
        "poor.txt,qa-lee,greeting,no,\n"
        "poor.txt,qa-lee,empathy,partly,\n"
        "poor.txt,qa-lee,courtesy,no,\n"
        "missing.txt,qa-lee,greeting,no,\n"
    )
    reviews.drop_review("week-48.csv", review)

    requests = reviews.tick()
    assert isinstance(requests, list) and len(requests) == 1
    reviews.run(requests[0])

    loaded = harness.warehouse.fetch_rows(tables.qa_reviews)
    assert len(loaded) == 6
    assert {r["consultation_id"] for r in loaded} == set(ids.values())
    assert {r["review_file"] for r in loaded} == {"reviews/week-48.csv"}
    assert "9876" not in harness.table("qa_reviews").to_csv()  # comment redacted
    errors = {
        r["row_number"]: r["reason"] for r in harness.warehouse.fetch_rows(tables.review_errors)
    }
    assert errors == {
        8: "question_id 'courtesy' is not a question of inbound/v1",
        9: "no consultation 'missing.txt' in the pipeline",
    }
    loaded_meta = reviews.metadata("qa_reviews")
    assert (loaded_meta["answers_loaded"], loaded_meta["rows_refused"]) == (6, 2)

    calibration = harness.warehouse.fetch_rows(tables.scorecard_calibration)
    by_key = {(r["question_id"], r["comparison"]): r for r in calibration}
    greeting = by_key[("greeting", "analyzer_vs_reviewer")]
    assert (greeting["analyzer"], greeting["prompt_version"]) == ("local-rules", "v1")
    assert (greeting["consultations"], greeting["pairs"]) == (2, 3)
    expected = sum(
        _machine(harness, ids[name], "greeting") == human
        for name, human in (("good.txt", greeting_good), ("poor.txt", "no"), ("poor.txt", "no"))
    )
    assert greeting["exact_agreement"] == round(expected / 3, 4)
    humans = by_key[("empathy", "reviewer_vs_reviewer")]
    assert (humans["pairs"], humans["exact_agreement"], humans["mean_absolute_error"]) == (
        1, 0.0, 0.5,
    )  # fmt: skip
    overall = by_key[("overall", "analyzer_vs_reviewer")]
    assert overall["pairs"] == 6
    meta = reviews.metadata("scorecard_calibration")
    assert meta["reviewed_consultations"] == 2 and meta["reviewers"] == 2
    assert "| inbound/v1 | v1 | local-rules | 2 | 6 |" in meta["overall"]
    kappa = meta["kappa inbound/v1 v1 local-rules"]
    assert kappa == "undefined" or kappa == overall["weighted_kappa"]

    # The load moved the reviewed answers' watermark: one more calibration, then quiet.
    follow_up = reviews.tick()
    if isinstance(follow_up, list):
        assert [r.asset_selection for r in follow_up] == [[AssetKey("scorecard_calibration")]]
        reviews.run(follow_up[0])
    assert isinstance(reviews.tick(), SkipReason)

    # A changed file replaces what it gave: qa-lee's rows and the errors are gone.
    reviews.drop_review("week-48.csv", "\n".join(review.splitlines()[:5]) + "\n")
    (request,) = reviews.tick()
    reviews.run(request)
    assert len(harness.warehouse.fetch_rows(tables.qa_reviews)) == 4
    assert harness.warehouse.fetch_rows(tables.review_errors) == []

    # A reanalysis with another prompt version: calibration again, one row set per version.
    assert harness.reanalyze_all("v2").success
    (request,) = reviews.tick()
    assert request.asset_selection == [AssetKey("scorecard_calibration")]
    reviews.run(request)
    versions = {
        r["prompt_version"]
        for r in harness.warehouse.fetch_rows(tables.scorecard_calibration)
        if r["comparison"] == "analyzer_vs_reviewer"
    }
    assert versions == {"v1", "v2"}

    # Review files are the QA team's: untouched.
    assert harness.backend is not None
    changed = "\n".join(review.splitlines()[:5]) + "\n"
    assert harness.backend.get("reviews/week-48.csv") == changed.encode()
