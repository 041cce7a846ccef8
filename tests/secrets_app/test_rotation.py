"""rotate_master_key: re-seal every kept value under the first key, while serving, resumably."""

import threading
from io import StringIO

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from buckets.core import rotation, sealing, store
from buckets.management.commands.rotate_master_key import Command as RotateCommand
from buckets.models import Bucket, Entry
from kvsite.models import AuditEvent
from secrets_app import services
from tests.secrets_app.conftest import flip_last_byte

from .conftest import KEY_NEW, KEY_OLD

BUCKET = "SYS_secrets_prod"


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_master_key", *args, stdout=out, stderr=out)
    return out.getvalue()


def fill(system, *, secrets: int = 6, versions: int = 3) -> dict[str, str]:
    """Secrets with several kept versions each; returns name -> latest value."""
    latest = {}
    for index in range(secrets):
        name = f"app/secret-{index}"
        services.secret_create(environment="prod", name=name, value=f"{name}-v0", actor=system)
        for version in range(1, versions):
            services.secret_update(environment="prod", name=name, value=f"{name}-v{version}", actor=system)
        latest[name] = f"{name}-v{versions - 1}"
    return latest


def assert_counters_exact() -> None:
    for bucket in Bucket.objects.all():
        entries = Entry.objects.filter(bucket=bucket)
        assert bucket.values_count == entries.count()
        assert bucket.bytes_total == (entries.aggregate(total=Sum("size"))["total"] or 0)


def all_open(*, bucket: str = BUCKET) -> None:
    for entry in Entry.objects.filter(bucket__name=bucket, operation="put"):
        sealing.value_open(envelope=entry.value, bucket=bucket, key=entry.key)


@pytest.mark.django_db
def test_rotation_reseals_every_kept_version_without_new_revisions(system, settings) -> None:
    latest = fill(system)
    revisions = list(Entry.objects.order_by("id").values_list("id", "key", "revision", "created_at"))
    last_revision = Bucket.objects.get(name=BUCKET).last_revision
    settings.KV_MASTER_KEYS = f"{KEY_NEW},{KEY_OLD}"

    output = rotate("--batch-size", "4")

    assert rotation.master_key_usage() == {"new": 18}
    assert "Re-sealed 18 values" in output
    assert "  new: 18 (first: seals new values)" in output
    assert "  old: 0" in output
    assert "safe to remove from KV_MASTER_KEYS" in output
    assert list(Entry.objects.order_by("id").values_list("id", "key", "revision", "created_at")) == revisions
    assert Bucket.objects.get(name=BUCKET).last_revision == last_revision
    assert_counters_exact()
    rotations = AuditEvent.objects.filter(action="ROTATE", success=True)
    assert sum(int(event.detail.split()[1]) for event in rotations) == 18
    assert {event.actor_type for event in rotations} == {"system"}

    # Then the old key can go.
    settings.KV_MASTER_KEYS = KEY_NEW
    all_open()
    for name, value in latest.items():
        assert services.secret_reveal(environment="prod", name=name, actor=system).value == value


@pytest.mark.django_db
def test_a_second_run_has_nothing_to_do(system, settings) -> None:
    fill(system, secrets=2)
    settings.KV_MASTER_KEYS = f"{KEY_NEW},{KEY_OLD}"
    rotate()

    output = rotate()

    assert "Re-sealed 0 values" in output


@pytest.mark.django_db
def test_an_interrupted_rotation_resumes(system, settings, monkeypatch) -> None:
    fill(system)
    settings.KV_MASTER_KEYS = f"{KEY_NEW},{KEY_OLD}"
    real_reseal = sealing.value_reseal
    calls = {"count": 0}

    def interrupted(**kwargs):
        calls["count"] += 1
        if calls["count"] > 10:
            raise KeyboardInterrupt
        return real_reseal(**kwargs)

    monkeypatch.setattr(sealing, "value_reseal", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rotate("--batch-size", "4")
    partial = rotation.master_key_usage()
    monkeypatch.setattr(sealing, "value_reseal", real_reseal)

    rotate("--batch-size", "4")

    assert partial == {"new": 8, "old": 10}  # two whole batches committed, the third rolled back
    assert rotation.master_key_usage() == {"new": 18}
    assert_counters_exact()


@pytest.mark.django_db
def test_check_only_reports(system, settings) -> None:
    fill(system, secrets=1)
    settings.KV_MASTER_KEYS = f"{KEY_NEW},{KEY_OLD}"

    output = rotate("--check")

    assert "Re-sealing" not in output
    assert "  new: 0 (first: seals new values)" in output
    assert "  old: 3" in output


@pytest.mark.django_db
def test_unreadable_values_are_reported_left_alone_and_audited(system, settings) -> None:
    fill(system, secrets=2, versions=1)
    victim = Entry.objects.get(key="app/secret-0")
    Entry.objects.filter(pk=victim.pk).update(value=flip_last_byte(bytes(victim.value)))
    settings.KV_MASTER_KEYS = f"{KEY_NEW},{KEY_OLD}"

    with pytest.raises(CommandError, match="1 values could not be opened"):
        rotate()

    assert rotation.master_key_usage() == {"new": 1, "old": 1}
    failure = AuditEvent.objects.get(action="ROTATE", success=False)
    assert failure.key_path == "app/secret-0"
    assert "failed authentication" in failure.reason


@pytest.mark.django_db
def test_values_under_an_unconfigured_key_are_flagged(system, settings) -> None:
    fill(system, secrets=1, versions=1)
    settings.KV_MASTER_KEYS = KEY_NEW

    with pytest.raises(CommandError):
        out = StringIO()
        try:
            call_command("rotate_master_key", stdout=out, stderr=out)
        finally:
            output = out.getvalue()

    assert "old: 1 (NOT in KV_MASTER_KEYS: cannot be opened)" in output


@pytest.mark.django_db(transaction=True)
def test_rotation_while_the_server_keeps_serving(
    system, settings, monkeypatch, asgi_server_factory, issue_token
) -> None:
    """Given a real server process answering reads and writes from a client thread, when the
    rotation runs batch by batch in between, then every request succeeds, no write is lost, and
    afterwards the old key can be removed."""
    latest = fill(system, secrets=8, versions=3)
    settings.KV_MASTER_KEYS = f"{KEY_NEW},{KEY_OLD}"
    server = asgi_server_factory(env={"KV_MASTER_KEYS": settings.KV_MASTER_KEYS})
    headers = {"Authorization": f"Bearer {issue_token('admin')}", "X-Ironflow-Environment-ID": "prod"}
    stop = threading.Event()
    progress = threading.Condition()
    served = {"requests": 0}
    written: dict[str, str] = {}
    failures: list[str] = []

    def serve() -> None:
        with httpx.Client(base_url=server.http_url, headers=headers, timeout=30) as http:
            round_ = 0
            while not stop.is_set() and not failures:
                name = f"app/secret-{round_ % 8}"
                reveal = http.get(f"/api/v1/secrets/{name}/value")
                if reveal.status_code != 200 or reveal.json()["value"] != latest[name]:
                    failures.append(f"reveal {name}: {reveal.status_code} {reveal.text}")
                live, value = f"live/{round_ % 3}", f"value-{round_}"
                if live in written:
                    write = http.put(f"/api/v1/secrets/{live}", json={"value": value})
                else:
                    write = http.post("/api/v1/secrets", json={"name": live, "value": value})
                if write.status_code not in (200, 201):
                    failures.append(f"write {live}: {write.status_code} {write.text}")
                written[live] = value
                round_ += 1
                with progress:
                    served["requests"] += 2
                    progress.notify_all()

    def wait_for_serving() -> None:
        with progress:
            target = served["requests"] + 2
            assert progress.wait_for(lambda: served["requests"] >= target or failures, timeout=60)

    real_progress = RotateCommand._progress

    def interleaved(command, report) -> None:
        # Between batches (outside their transactions) the server answers a couple of requests.
        real_progress(command, report)
        wait_for_serving()

    monkeypatch.setattr(RotateCommand, "_progress", interleaved)
    client = threading.Thread(target=serve)
    client.start()
    try:
        wait_for_serving()
        output = rotate("--batch-size", "3")
    finally:
        stop.set()
        client.join(timeout=60)

    assert not failures, (failures, server.log())
    assert served["requests"] >= 2 * 8
    assert "Re-sealed" in output
    assert "old" not in rotation.master_key_usage()
    # Then the old key goes: the server restarts with the new key only and still reads everything.
    settings.KV_MASTER_KEYS = KEY_NEW
    all_open()
    restarted = asgi_server_factory(env={"KV_MASTER_KEYS": KEY_NEW})
    with httpx.Client(base_url=restarted.http_url, headers=headers, timeout=30) as http:
        for name, value in {**latest, **written}.items():
            got = http.get(f"/api/v1/secrets/{name}/value")
            assert got.status_code == 200, (got.text, restarted.log()[-3000:])
            assert got.json()["value"] == value
    assert_counters_exact()


@pytest.mark.django_db
def test_rotation_skips_user_buckets(system, settings, make_bucket) -> None:
    make_bucket("plain")
    store.entry_put(bucket="APP_plain", key="k", value=b"not sealed")
    fill(system, secrets=1, versions=1)
    settings.KV_MASTER_KEYS = f"{KEY_NEW},{KEY_OLD}"

    rotate()

    assert bytes(store.entry_get(bucket="APP_plain", key="k").value) == b"not sealed"


@pytest.mark.django_db
def test_rotation_walks_sealed_buckets_not_names(system, settings) -> None:
    """Given a sealed bucket with no secret-like name and an unsealed one named like a secret
    environment, when rotating, then the sealed one is re-sealed and the other is left alone
    (before, the name prefix chose: the first was skipped and the second reported as corrupt)."""
    store.bucket_create(name="SYS_vault_anything", sealed=True)
    store.entry_put(
        bucket="SYS_vault_anything",
        key="k",
        value=sealing.value_seal(plaintext=b"v", bucket="SYS_vault_anything", key="k"),
    )
    store.bucket_create(name="SYS_secrets_lookalike")
    store.entry_put(bucket="SYS_secrets_lookalike", key="k", value=b"plain bytes")
    settings.KV_MASTER_KEYS = f"{KEY_NEW},{KEY_OLD}"

    output = rotate()

    assert "Re-sealed 1 values" in output
    assert rotation.master_key_usage() == {"new": 1}
    assert bytes(store.entry_get(bucket="SYS_secrets_lookalike", key="k").value) == b"plain bytes"


@pytest.mark.django_db
def test_secret_environments_are_created_sealed(system, make_bucket) -> None:
    fill(system, secrets=1, versions=1)
    make_bucket("plain")

    assert dict(Bucket.objects.values_list("name", "sealed")) == {BUCKET: True, "APP_plain": False}
