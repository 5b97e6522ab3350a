import importlib.util, re, sys
from ganbench import report

def load_old():
    spec = importlib.util.spec_from_file_location("oldreport", "/tmp/oldreport.py")
    mod = importlib.util.module_from_spec(spec); sys.modules["oldreport"] = mod; spec.loader.exec_module(mod); return mod

def norm(page):
    page = page.replace("&#x27;", "&#39;").replace('<img class="" ', "<img ")
    return re.sub(r">\s+<", "><", page).strip()

def test_same(hand_store, tmp_path):
    old = load_old()
    uri, parent, _ = hand_store
    for extra in ([], ["metric=cas"], ["metric=gen_accuracy"]):
        for mod, d in ((old, "old"), (report, "new")):
            assert mod.main([f"tracking.uri={uri}", "experiment=hand", f"parent={parent}", f"out={tmp_path/d}", "log=false", *extra], echo=lambda s: None) == 0
        for kind in ("md", "csv"):
            assert (tmp_path/"old"/f"leaderboard.{kind}").read_text() == (tmp_path/"new"/f"leaderboard.{kind}").read_text(), kind
        a, b = norm((tmp_path/"old"/"leaderboard.html").read_text()), norm((tmp_path/"new"/"leaderboard.html").read_text())
        if a != b:
            i = next(i for i in range(min(len(a), len(b))) if a[i] != b[i])
            raise AssertionError(f"{extra}\nOLD {a[i-200:i+200]}\nNEW {b[i-200:i+200]}")
