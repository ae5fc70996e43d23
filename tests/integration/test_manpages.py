# SPDX-License-Identifier: Apache-2.0
"""The manual pages docs/backupfs.1 and docs/backupctl.1 stay in step with
--help: every option and command the programs list appears in the page,
and every command the page describes exists."""

import re

import pytest

from conftest import REPO_ROOT

OPT_RE = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def man_text(name):
    """The page as plain text: troff font escapes and \\- undone."""
    text = (REPO_ROOT / "docs" / name).read_text(encoding="utf-8")
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\e", "\\")


def help_text(util, *args):
    r = util.run([*args, "--help"], timeout=30)
    assert r.returncode == 0, r.describe()
    return r.stdout


def options_of(text):
    return set(OPT_RE.findall(text))


def test_backupfs_options_in_man_page(util):
    out = help_text(util, util.BACKUPFS)
    ours = out.split("backupfs options:", 1)[1].split(
        "The configuration file", 1)[0]
    man = man_text("backupfs.1")
    opts = options_of(ours)
    assert {"-o", "-f", "--help", "--version"} <= opts, ours
    missing = sorted(o for o in opts if o not in man)
    # -o NAME: the option's name is what must be documented
    names = re.findall(r"-o ([a-z_]+=?)", ours)
    assert names, ours
    missing += sorted("-o " + n for n in names if n not in man)
    assert not missing, "backupfs.1 lacks %s" % missing


def test_backupfs_config_keys_in_man_page(util):
    out = help_text(util, util.BACKUPFS)
    man = man_text("backupfs.1")
    keys = set(re.findall(r'"([a-z_]+)":', out.split(
        "The configuration file", 1)[1]))
    assert "key_file" in keys, out
    missing = sorted(k for k in keys if k not in man)
    assert not missing, "backupfs.1 lacks config keys %s" % missing


def ctl_commands(text):
    section = text.split("commands:", 1)[1].split("options:", 1)[0]
    return sorted({m.group(1) for m in
                   re.finditer(r"^  ([a-z][a-z-]+)", section, re.M)})


def man_commands(man):
    section = man.split(".SH COMMANDS", 1)[1].split("\n.SH ", 1)[0]
    return sorted({m.group(2) for m in re.finditer(
        r"^\.(TP|TQ)\n\.B[IR]* \"?([a-z][a-z-]+)", section, re.M)})


def test_backupctl_commands_in_man_page(util):
    out = help_text(util, util.BACKUPCTL)
    cmds = ctl_commands(out)
    assert {"init", "status", "restore", "snapshot"} <= set(cmds), cmds
    assert cmds == man_commands(man_text("backupctl.1"))


def test_backupctl_options_in_man_page(util):
    man = man_text("backupctl.1")
    out = help_text(util, util.BACKUPCTL)
    opts = options_of(out.split("commands:", 1)[1])
    assert {"--config", "--mount", "--json", "--file", "--to"} <= opts, out
    where = {o: "backupctl --help" for o in opts}
    for cmd in ctl_commands(out):
        for o in options_of(help_text(util, util.BACKUPCTL, cmd)):
            where.setdefault(o, "backupctl %s --help" % cmd)
    missing = sorted("%s (%s)" % (o, w) for o, w in where.items()
                     if not re.search(r"(?<![\w-])%s(?![\w-])"
                                      % re.escape(o), man))
    assert not missing, "backupctl.1 lacks %s" % missing


def test_backupctl_exit_codes_in_man_page(util):
    out = help_text(util, util.BACKUPCTL)
    codes = re.findall(r"\b(\d) [a-z]", out.split("exit status:", 1)[1])
    assert codes == ["0", "1", "2", "3"], out
    section = man_text("backupctl.1").split(".SH EXIT STATUS", 1)[1]
    for c in codes:
        assert re.search(r"^\.B %s$" % c, section, re.M), c


@pytest.mark.parametrize("page", ["backupfs.1", "backupctl.1"])
def test_man_pages_installed(page):
    meson = (REPO_ROOT / "meson.build").read_text(encoding="utf-8")
    m = re.search(r"install_man\(([^)]*)\)", meson)
    assert m and "docs/" + page in m.group(1), "meson install skips " + page
