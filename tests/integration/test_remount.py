# SPDX-License-Identifier: Apache-2.0
"""Backups, snapshot job files and events survive unmount and mount."""

import os

import pytest


@pytest.fixture
def before(util, mnt):
    """A snapshot taken through the mount, a backup deleted, and what the
    mount showed; then remounted.  Returns (mount, what it showed)."""
    first = mnt.backups()[0]
    ts, job = util.snapshot_via_mount(mnt.inst(), "kept")
    os.unlink(mnt.backup(first))
    seen = {
        "backups": mnt.backups(),
        "latest": os.readlink(mnt.inst() / "backups" / "latest"),
        "sha": util.xattr(mnt.backup(ts), "sha256"),
        "ts": ts,
        "job": job,
        "events": util.read_events(mnt.inst()),
        "snapshots": sorted(os.listdir(mnt.inst() / "snapshots")),
    }
    mnt.remount()
    return mnt, seen


def test_backups_survive(before):
    m, seen = before
    assert m.backups() == seen["backups"]


def test_latest_survives(before):
    m, seen = before
    assert os.readlink(m.inst() / "backups" / "latest") == seen["latest"]


def test_backup_content_survives(util, before):
    m, seen = before
    p = m.backup(seen["ts"])
    assert util.sha256(util.read_file(p)) == seen["sha"]
    assert util.xattr(p, "label") == "kept"


def test_snapshot_job_file_survives(util, before):
    m, seen = before
    assert sorted(os.listdir(m.inst() / "snapshots")) == seen["snapshots"]
    job = util.read_json(m.inst() / "snapshots" / "kept")
    assert job["state"] == "completed"
    assert job["backup"] == seen["ts"]


def test_events_survive(util, before):
    m, seen = before
    after = util.read_events(m.inst())
    assert after[:len(seen["events"])] == seen["events"]


def test_status_active_after_remount(util, before):
    m, seen = before
    assert util.status(m.inst())["state"] == "ACTIVE"


def test_new_snapshot_after_remount(util, before):
    m, seen = before
    ts, _ = util.snapshot_via_mount(m.inst(), "after-remount")
    assert m.backups() == sorted(seen["backups"] + [ts])
    names = [e["event"] for e in util.read_events(m.inst())]
    assert names.count("backup.create.end") >= 2


def test_remount_twice(util, before):
    m, seen = before
    m.remount()
    assert m.backups() == seen["backups"]
    assert util.read_json(m.inst() / "snapshots" / "kept")["state"] == \
        "completed"
