"""A class taking a quiz at once (a script, not a test).

    PATHREVIEW_DATA=/path/to/pcam-subset .venv/bin/python benchmarks/bench_quiz.py [--students 30] [--browsers 2]

Starts a real ``streamlit run app/main.py`` server on 127.0.0.1 (the shipped model, a fresh SQLite store),
stores a quiz drawn from the validation split and opens the teacher's live class view in Chromium (it redraws
every few seconds, as in a lesson). Then ``--students`` students join with the code and a name and, for each
tile, look at it for a random 1-4 s, answer, and wait for the feedback. The first student to answer a tile
pays for the model's pass on it; the others get the shared cache.

``--browsers`` of the students are real Chromium contexts: their figure is the time from the click on "Submit
answer" to the feedback on screen (the model's probability shown, the Grad-CAM image loaded). The others speak
Streamlit's websocket protocol (``ws_student.py``): the server does the same work for them, but nothing is
drawn; their figure is from sending the answer to the feedback page and its images received. On a 2-core
machine 30 Chromium pages drawing next to the server measure Chromium, not the app (over 30 s per answer),
hence this mix; the browsers' figure still includes drawing on a machine shared with the server and the
rest of the class. Prints median, p90 and max of each.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_e2e import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402
from ws_student import WsStudent  # noqa: E402

TARGET_MEDIAN_S = 1.0
FEEDBACK_SHOWN = """() => {
    const metric = [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
        .some(m => m.innerText.includes('Model P(tumour)'));
    const cam = [...document.querySelectorAll('[data-testid="stImageCaption"]')].some(cap => {
        if (!cap.innerText.includes('Grad-CAM')) return false;
        const img = cap.closest('[data-testid="stImage"]')?.querySelector('img')
                    ?? cap.parentElement.querySelector('img');
        return img && img.complete && img.naturalWidth > 0;
    });
    return metric && cam;
}"""


def make_quiz(url: str, data: Path, bundle: Path, tiles: int, seed: int) -> str:
    """Store a quiz of ``tiles`` validation tiles (balanced) straight through the store's functions."""
    from app.quiz import selection
    from app.store import open_store, quizzes
    from model_training.bundle.files import read_card
    from model_training.data.sources import open_source

    assert open_store(url).ok
    source = open_source(data, "valid")
    card = read_card(bundle)
    threshold = float(card["calibration"]["tta"]["threshold"])
    pool = selection.candidate_pool(source.ids, source.labels, selection.bundle_scores(bundle))
    chosen = selection.choose(pool, tiles, 0.5, hard=False, seed=seed, threshold=threshold)
    spec = quizzes.QuizSpec("dataset", str(data.resolve()), "bench", tiles, 0.5, False, seed, card["sha256"],
                            threshold, "bench")
    code, key = quizzes.create_quiz(spec, [quizzes.TileIn(r.id, int(r.label), float(r.p))
                                           for r in chosen.itertuples()], url=url)
    return code, key


async def ws_student(base: str, code: str, name: str, tiles: int, rng: random.Random, times: list[float],
                     delay: float, think: tuple[float, float]) -> None:
    """A student over the websocket protocol (no drawing)."""
    await asyncio.sleep(delay)
    s = WsStudent(base)
    page = await s.join(code, name)
    for i in range(tiles):
        await asyncio.sleep(rng.uniform(*think))  # looking at the tile
        feedback, seconds = await s.answer(page, i, rng.choice(["tumour", "no tumour"]), rng.randint(1, 5))
        times.append(seconds)
        page = await s.next(feedback, i)
    await s.close()


async def browser_student(browser, base: str, code: str, name: str, tiles: int, rng: random.Random,
                          times: list[float], delay: float, think: tuple[float, float]) -> None:
    """A student in a Chromium context of its own."""
    await asyncio.sleep(delay)
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    page.set_default_timeout(180_000)
    await page.goto(f"{base}/quiz")
    await page.get_by_label("Quiz code", exact=True).fill(code)
    await page.get_by_label("Display name", exact=True).fill(name)
    await page.get_by_role("button", name="Start").click()
    for i in range(tiles):
        submit = page.get_by_role("button", name="Submit answer")
        await page.get_by_text(f"Tile {i + 1} of {tiles}").wait_for()
        await submit.wait_for()
        await asyncio.sleep(rng.uniform(*think))  # looking at the tile
        choice = rng.choice(["tumour", "no tumour"])
        await page.locator('[data-testid="stRadio"]').get_by_text(choice, exact=True).click()
        t0 = time.perf_counter()
        await submit.click()
        await page.wait_for_function(FEEDBACK_SHOWN, polling=25)
        times.append(time.perf_counter() - t0)
        await page.get_by_role("button", name="See my results" if i == tiles - 1 else "Next tile").click()
    await page.get_by_text(f"Your results, {name}").wait_for()
    await ctx.close()


async def run(base: str, code: str, key: str, students: int, browsers: int, tiles: int, seed: int,
              think: tuple[float, float]) -> tuple[list[float], list[float]]:
    from playwright.async_api import async_playwright

    rng = random.Random(seed)
    in_browser: list[float] = []
    over_ws: list[float] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        teacher = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
        await teacher.goto(f"{base}/teach?quiz={code}")
        await teacher.get_by_label("Teacher key", exact=True).fill(key, timeout=180_000)
        await teacher.get_by_role("button", name="Open the class view").click()
        await teacher.get_by_text(f"Quiz {code}").wait_for(timeout=180_000)
        t0 = time.perf_counter()
        jobs = []
        for k in range(students):
            name, k_rng, delay = f"student {k + 1:02d}", random.Random(rng.random()), 0.2 * k
            if k < browsers:
                jobs.append(browser_student(browser, base, code, name, tiles, k_rng, in_browser, delay, think))
            else:
                jobs.append(ws_student(base, code, name, tiles, k_rng, over_ws, delay, think))
        await asyncio.gather(*jobs)
        wall = time.perf_counter() - t0
        total = students * tiles
        await teacher.get_by_text(f"{total} / {total}").wait_for(timeout=30_000)  # the live view caught up
        print(f"{students} students ({browsers} in Chromium) x {tiles} tiles in {wall:.1f} s; the class view "
              f"shows {total} / {total} answers", flush=True)
        await browser.close()
    return in_browser, over_ws


def main() -> None:
    from model_training.bundle.files import default_bundle

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=default_bundle())
    ap.add_argument("--data", type=Path, default=os.environ.get("PATHREVIEW_DATA"))
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--browsers", type=int, default=2, help="students in real Chromium contexts (default 2)")
    ap.add_argument("--tiles", type=int, default=10, help="tiles each student answers (the quiz size)")
    ap.add_argument("--think", type=float, nargs=2, default=(1.0, 4.0), metavar=("MIN", "MAX"),
                    help="seconds a student looks at a tile before answering (uniform; default 1 4)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.data is None:
        ap.error("set PATHREVIEW_DATA or pass --data (the quiz is drawn from its validation split)")
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is not installed (apt-get install chromium)")
    tmp = Path(tempfile.mkdtemp(prefix="pathreview-bench-quiz-"))
    url = f"sqlite:///{tmp / 'store.db'}"
    code, key = make_quiz(url, args.data, args.bundle.resolve(), args.tiles, args.seed)
    os.environ["PATHREVIEW_DB_URL"] = url
    proc, base = start_server(args.bundle.resolve(), url, args.data.resolve(), tmp / "streamlit.log")
    print(f"bundle {args.bundle}; {os.cpu_count()} CPUs; quiz {code}; server {base}", flush=True)
    try:
        wait_healthy(base, proc)
        in_browser, over_ws = asyncio.run(run(base, code, key, args.students, min(args.browsers, args.students),
                                              args.tiles, args.seed, tuple(args.think)))
    except Exception:
        print((tmp / "streamlit.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        stop_server(proc)
    report("answer -> feedback on screen (Chromium students)", in_browser)
    report("answer -> feedback page and images received (websocket students)", over_ws)
    report("all students", in_browser + over_ws)


def report(what: str, times: list[float]) -> None:
    if len(times) < 2:
        return
    med, p90 = statistics.median(times), statistics.quantiles(times, n=10, method="inclusive")[-1]
    print(f"{what}, {len(times)} answers: median {med:.2f} s, p90 {p90:.2f} s, max {max(times):.2f} s "
          f"(target median <= {TARGET_MEDIAN_S:g} s) {'met' if med <= TARGET_MEDIAN_S else 'MISSED'}", flush=True)


if __name__ == "__main__":
    main()
