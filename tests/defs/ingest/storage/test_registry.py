"""Proves the storage registry and the bucket resource's backend options.

`backend_for` finds a backend by URL scheme (a bare path is a folder); an unknown scheme is a
ValueError that lists every registered URL form, a backend registered at run time included,
and such a backend is found by its scheme. `open_object_store` hands the factory the one
options object of the backend's own type (ignoring the others, defaults when none is given)
and caches one store per URL and options. `BucketResource` passes its nested options fields
(`s3`, `supabase`, and any field a new backend adds) to the registry, resolves an
EnvVar service-role key inside a run and never shows the key in a repr; the four sensor limits
are plain fields with their defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import Config, EnvVar, asset, materialize

from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.ingest.storage import (
    BACKENDS,
    Backend,
    LocalFolderStore,
    ObjectStore,
    S3Options,
    SupabaseOptions,
    _open_cached,
    backend_for,
    local,
    open_object_store,
    s3,
    supabase,
)
from cscoach_pipeline.defs.ingest.storage.s3 import S3ObjectStore

SECRET = "service-role-key-never-shown-4711"


class MemOptions(Config):
    label: str = "default"


class Recorder:
    """A test backend's factory: records what reached it, serves a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, MemOptions]] = []

    def __call__(self, url: str, options: MemOptions) -> ObjectStore:
        self.calls.append((url, options))
        return LocalFolderStore(self.root)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    _open_cached.cache_clear()
    yield
    _open_cached.cache_clear()


@pytest.fixture
def mem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder(tmp_path)
    monkeypatch.setitem(
        BACKENDS, "mem", Backend(usage="mem://name", options=MemOptions, open=recorder)
    )
    return recorder


def test_schemes_find_their_backends() -> None:
    assert backend_for("file:///srv/bucket") is local.BACKEND
    assert backend_for("/srv/bucket") is local.BACKEND  # a bare absolute path is a folder
    assert backend_for("s3://b/p") is s3.BACKEND
    assert backend_for("supabase://b/p") is supabase.BACKEND
    assert (s3.BACKEND.options, supabase.BACKEND.options) == (S3Options, SupabaseOptions)


def test_unknown_scheme_lists_the_registered_ones() -> None:
    with pytest.raises(ValueError) as caught:
        open_object_store("gs://bucket/prefix")
    assert str(caught.value) == (
        "unsupported CSCOACH_BUCKET_URL scheme 'gs': "
        "use file:///path, s3://bucket/prefix or supabase://bucket/prefix"
    )


def test_a_registered_backend_is_found_and_listed(mem: Recorder) -> None:
    store = open_object_store("mem://calls")
    assert isinstance(store, LocalFolderStore) and store.root == mem.root.resolve()
    assert mem.calls == [("mem://calls", MemOptions())]  # its defaults, when none is given
    with pytest.raises(ValueError, match=r"supabase://bucket/prefix or mem://name$"):
        open_object_store("ftp://host/x")


def test_the_backend_gets_the_options_of_its_own_type(mem: Recorder) -> None:
    chosen = MemOptions(label="team-a")
    open_object_store("mem://calls", S3Options(endpoint_url="http://x"), chosen, SupabaseOptions())
    assert mem.calls == [("mem://calls", chosen)]


def test_stores_are_cached_per_url_and_options(mem: Recorder) -> None:
    first = open_object_store("mem://calls", MemOptions(label="a"))
    assert open_object_store("mem://calls", MemOptions(label="a")) is first
    assert open_object_store("mem://calls", MemOptions(label="b")) is not first
    assert open_object_store("mem://other", MemOptions(label="a")) is not first
    assert [options.label for _, options in mem.calls] == ["a", "b", "a"]


def test_factory_errors_are_not_cached() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"):
            open_object_store("supabase://bucket/prefix")


# ----------------------------------------------------------------------- the bucket resource


def test_bucket_resource_passes_its_options_fields(mem: Recorder, tmp_path: Path) -> None:
    endpoint = "http://127.0.0.1:9"
    on_s3 = BucketResource(url="s3://bucket/prefix", s3=S3Options(endpoint_url=endpoint))
    store = on_s3.store()  # building the client makes no request
    assert isinstance(store, S3ObjectStore)
    assert store._client.meta.endpoint_url == endpoint
    assert store._client.meta.config.s3["addressing_style"] == "path"

    class WithMem(BucketResource):
        mem: MemOptions = MemOptions()

    # A new backend's options field reaches its factory without a line in store().
    WithMem(url="mem://x", mem=MemOptions(label="from-the-field")).store()
    assert mem.calls == [("mem://x", MemOptions(label="from-the-field"))]


def test_service_role_key_resolves_in_a_run_and_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSCOACH_TEST_SUPABASE_KEY", SECRET)
    bucket = BucketResource(
        url="supabase://recordings/tenant",
        supabase=SupabaseOptions(url="http://127.0.0.1:9", key=EnvVar("CSCOACH_TEST_SUPABASE_KEY")),
    )
    seen: list[tuple[str | None, str]] = []

    @asset
    def probe(bucket: BucketResource) -> None:
        seen.append((bucket.supabase.key, repr(bucket) + str(bucket.supabase)))

    assert materialize([probe], resources={"bucket": bucket}).success
    ((key, shown),) = seen
    assert key == SECRET
    assert SECRET not in shown and "http://127.0.0.1:9" in shown
    plain = BucketResource(url="supabase://b/p", supabase=SupabaseOptions(url="u", key=SECRET))
    assert SECRET not in repr(plain) and SECRET not in str(plain)


def test_sensor_limits_are_plain_fields_with_defaults() -> None:
    bucket = BucketResource(url="/srv/bucket")
    assert (
        bucket.settle_seconds,
        bucket.max_runs_per_tick,
        bucket.tick_budget_s,
        bucket.list_budget_s,
    ) == (10.0, 200, 20.0, 30.0)
    fields = BucketResource.model_fields
    for name in ("settle_seconds", "max_runs_per_tick", "tick_budget_s", "list_budget_s"):
        assert fields[name].description
