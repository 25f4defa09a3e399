"""Migration from Kea: its JSON dialect, its lease file, the resumable import."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastdhcp.kea import jsonc
from fastdhcp.kea.lease_import import ImportError_, SubnetRange, import_leases
from fastdhcp.kea.memfile import HEADER
from fastdhcp.store import LmdbLeaseStore

NET = [SubnetRange(1, 0xC0000200, 0xC00002FF)]  # 192.0.2.0/24


def test_comments_and_include(tmp_path: Path) -> None:
    inc = tmp_path / "sub.json"
    inc.write_text('# hash\n{ "id": 1 }\n')
    top = tmp_path / "kea.conf"
    top.write_text('// c\n{ /* a\n b */ "s": "x//y#z", "l": [ <?include "' + str(inc)
                   + '"?> ] }\n')
    assert jsonc.load(top) == {"s": "x//y#z", "l": [{"id": 1}]}


def test_error_names_the_included_file_and_line(tmp_path: Path) -> None:
    inc = tmp_path / "bad.json"
    inc.write_text('{\n "a": [1 2]\n}\n')
    top = tmp_path / "kea.conf"
    top.write_text('{\n"b": <?include "' + str(inc) + '"?>\n}\n')
    with pytest.raises(jsonc.KeaJsonError, match=r"bad.json:2: invalid JSON"):
        jsonc.load(top)


def _csv(path: Path, rows: list[str]) -> str:
    path.write_text(",".join(HEADER) + "\n" + "".join(r + "\n" for r in rows))
    return str(path)


def _row(ip: str, n: int, expire: int = 1900000000, valid: int = 3600) -> str:
    return f"{ip},02:00:00:00:00:{n:02x},,{valid},{expire},1,0,0,h{n},0,"


def test_bad_line_stops_before_writing(tmp_path: Path) -> None:
    f = _csv(tmp_path / "l.csv", [_row("192.0.2.10", 1), "192.0.2.11,zz,,3600,1,1,0,0,,0,"])
    with pytest.raises(ImportError_, match=r"l.csv:3: hwaddr"):
        import_leases([f], str(tmp_path / "db"), NET)
    assert not (tmp_path / "db").exists()
    report = import_leases([f], str(tmp_path / "db"), NET, skip_bad_lines=True)
    assert (report.bad_lines, report.total) == (1, 1)


def test_later_row_wins_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [_row(f"192.0.2.{i}", i) for i in range(1, 21)]
    rows.append(_row("192.0.2.5", 99, expire=1900009999))
    rows.append(_row("10.0.0.1", 7))
    f = _csv(tmp_path / "l.csv", rows)
    db = str(tmp_path / "db")
    real = LmdbLeaseStore.write
    calls = []

    def failing(self: LmdbLeaseStore, batch: list, **kw: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("interrupted")
        real(self, batch, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(LmdbLeaseStore, "write", failing)
    with pytest.raises(OSError):
        import_leases([f], db, NET, batch=8)
    monkeypatch.setattr(LmdbLeaseStore, "write", real)
    report = import_leases([f], db, NET, batch=8)
    assert (report.resumed_at, report.written, report.total, report.outside) == (8, 12, 20, 1)
    with LmdbLeaseStore(db, readonly=True) as store:
        assert len(store) == 20
        lease = store.get(0xC0000205)
        assert lease is not None and lease.expires == 1900009999
