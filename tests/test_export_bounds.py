"""Exports are bounded in pixels and memory, decided from the layout before anything is drawn
(issue 19): a PNG at most MAX_PNG_PIXELS, a GIF's frames at most MAX_GIF_FRAME_PIXELS each and
MAX_GIF_PIXELS together; a refusal says what to do instead and draws nothing; by default the dpi
is lowered to fit, saying so; PIL's own guard never escapes as a raw PIL error.

No test here depends on the machine's speed: "before anything is drawn" is checked by an engine
that fails if it is asked for a PNG."""
import io
import itertools
import struct
import warnings
import zlib

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.display import draw, engines, export
from backpropviz.display.layout import forget_layouts

from helpers import chain
from test_render import ENGINES  # noqa: E402 (the engines found here, one list for both files)

pytestmark = pytest.mark.engine


@pytest.fixture(autouse=True)
def fresh_layouts():
    forget_layouts()
    yield


def notes_trace():
    W1, W2 = np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[0.5, -0.5]])
    net = bpv.Sequential([bpv.MM(W1, np.zeros(2)), bpv.ReLU(), bpv.MM(W2, np.zeros(1)),
                          bpv.Sigmoid()], loss=bpv.SquaredLoss())
    return net.backprop(np.array([1.0, 2.0]), [1.0])


@pytest.fixture
def no_drawing(monkeypatch):
    """Graphviz may still lay a graph out (JSON), but drawing anything fails the test."""
    real, asked = engines.run_engine, []

    def run_engine(src, fmt="json", engine=None):
        if fmt != "json":
            asked.append(fmt)
            raise AssertionError(f"Graphviz was asked to draw ({fmt}) an export it should refuse")
        return real(src, fmt, engine)
    monkeypatch.setattr(engines, "run_engine", run_engine)
    return asked


def gif_frames(data: bytes):
    from PIL import Image
    im = Image.open(io.BytesIO(data))
    return im.n_frames, im.size


# --- the size is computed from the layout, and never below what Graphviz draws -------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("which", ["notes", "circuit", "wide names"])
def test_the_computed_size_is_what_graphviz_draws_or_a_little_more(engine, which):
    tr = notes_trace()
    if which == "circuit":
        tr = bpv.circuit(tr)
    elif which == "wide names":                 # East Asian characters: a caption wider
        mm = bpv.MM(np.eye(2), name="名前" * 30)
        tr = bpv.trace(lambda z: mm(z).sum(), np.array([1.0, 2.0]))
    r = draw.Renderer(tr, engine=engine)
    box = next(iter(r.layout.boxes))
    for k, marked, dpi in [(0, (), None), (len(tr) // 2, (box,), None), (len(tr), (), 40)]:
        want = export.raster_size(r, [k], dpi, marked)
        got = export.png_size(r.png(k, marked, dpi))
        assert all(g <= w <= 1.12 * g for g, w in zip(got, want)), (k, marked, dpi, got, want)


def test_the_computed_size_follows_the_layout_and_the_dpi():
    r = draw.renderer(notes_trace())
    L = r.layout
    w, h = export.raster_size(r, [9])
    assert w == pytest.approx((L.width + 2 * export.PAD_PT) * 96 / 72, abs=1)
    assert (L.height + 2 * export.PAD_PT) * 96 / 72 < h < (L.height + 120) * 96 / 72
    w2, h2 = export.raster_size(r, [9], dpi=48)
    assert abs(w2 - w / 2) <= 1 and abs(h2 - h / 2) <= 1
    # a GIF's frames: the largest of its steps
    assert export.raster_size(r, range(len(r.trace) + 1)) == tuple(
        max(export.raster_size(r, [k])[i] for k in range(len(r.trace) + 1)) for i in (0, 1))


# --- PNG ---------------------------------------------------------------------------------------

def test_png_just_under_and_just_over_its_limit(monkeypatch):
    r = draw.renderer(notes_trace())
    w, h = export.raster_size(r, [9])
    monkeypatch.setattr(export, "MAX_PNG_PIXELS", w * h)          # just under: drawn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = r.png(9)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and export.png_size(png)[0] <= w
    monkeypatch.setattr(export, "MAX_PNG_PIXELS", w * h - 1)      # just over: 96 dpi refused
    sent = []
    real = engines.run_engine
    monkeypatch.setattr(engines, "run_engine", lambda src, fmt="json", engine=None:
                        sent.append(src) or real(src, fmt, engine))
    with pytest.raises(bpv.BackpropError, match=r"at 96 dpi would be .*pixels.* Pass dpi=95 "
                                                r"or less.*save_svg"):
        r.png(9, dpi=96)
    assert sent == []
    # by default the dpi is lowered to fit, and a warning says so
    with pytest.warns(UserWarning, match=r"drawn at 95 dpi instead.*save_svg"):
        png = r.png(9)
    assert "dpi=95" in sent[0]
    pw, ph = export.png_size(png)
    assert pw * ph <= w * h - 1 and pw > 0.95 * w


def test_png_of_a_huge_graph_is_refused_before_graphviz_draws(no_drawing, monkeypatch):
    r = draw.renderer(chain(20))                    # 83 nodes, a tall drawing
    w, h = export.raster_size(r, [len(r.trace)])
    # too big even at the lowest dpi: refused, whatever the dpi asked for
    monkeypatch.setattr(export, "MAX_PNG_PIXELS", w * h * (export.MIN_DPI / 96) ** 2 * 0.9)
    for dpi in (None, 96, 300):
        with pytest.raises(bpv.BackpropError, match=r"more than a PNG may have.*No dpi of at "
                                                    r"least 36 .*save_svg.*smaller graph"):
            r.png(len(r.trace), dpi=dpi)
    assert no_drawing == []


def test_png_at_a_dpi_above_the_real_limit_is_refused(no_drawing):
    r = draw.renderer(chain(20))
    w, h = export.raster_size(r, [0], dpi=200)
    assert w * h > export.MAX_PNG_PIXELS                 # 200 dpi: about 120 megapixels
    with pytest.raises(bpv.BackpropError, match=r"at 200 dpi would be .*more than a PNG may "
                                                r"have \(at most 40 megapixels.*Pass dpi=(\d+)"):
        r.png(0, dpi=200)
    fit = int(str(pytest.raises(bpv.BackpropError, r.png, 0, dpi=200).value)
              .split("Pass dpi=")[1].split()[0])
    fw, fh = export.raster_size(r, [0], dpi=fit)
    w1, h1 = export.raster_size(r, [0], dpi=fit + 1)
    assert fw * fh <= export.MAX_PNG_PIXELS < w1 * h1       # the largest dpi that fits
    assert no_drawing == []


def test_a_side_longer_than_graphviz_draws_is_refused(no_drawing, monkeypatch):
    r = draw.renderer(chain(20))
    h = export.raster_size(r, [0])[1]
    monkeypatch.setattr(export, "MAX_SIDE", h - 1)
    with pytest.raises(bpv.BackpropError, match=r"pixels a side"):
        r.png(0, dpi=96)
    assert no_drawing == []


def test_the_png_is_drawn_at_the_dpi_asked_for(tmp_path):
    pic = bpv.render(notes_trace(), 9)
    w, h = export.png_size(pic.renderer.png(9))
    w2, h2 = export.png_size(pic.save_png(tmp_path / "s.png", dpi=48).read_bytes())
    assert abs(w2 - w / 2) <= 2 and abs(h2 - h / 2) <= 2
    assert "dpi" not in pic.renderer.dot(9)              # the DOT itself is unchanged


@pytest.mark.parametrize("dpi", [True, "96", float("nan"), float("inf"), 0, -5, 9, 601, [96]])
def test_a_dpi_that_is_not_a_sensible_number_is_refused(dpi, no_drawing):
    r = draw.renderer(notes_trace())
    with pytest.raises(bpv.BackpropError, match=r"dpi=.*from 10 to 600"):
        r.png(0, dpi=dpi)
    with pytest.raises(bpv.BackpropError, match=r"dpi=.*from 10 to 600"):
        r.gif(steps=[0], dpi=dpi)
    assert no_drawing == []


# --- GIF ---------------------------------------------------------------------------------------

def test_gif_just_under_and_just_over_its_memory_budget(monkeypatch):
    r = draw.renderer(notes_trace())
    steps = [3, 9, 14]
    w, h = export.raster_size(r, steps)
    monkeypatch.setattr(export, "MAX_GIF_PIXELS", 3 * w * h)      # just under: drawn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gif = r.gif(steps=steps)
    n, size = gif_frames(gif)
    assert n == 3 and size[0] <= w and size[1] <= h
    monkeypatch.setattr(export, "MAX_GIF_PIXELS", 3 * w * h - 1)  # just over
    monkeypatch.setattr(engines, "run_engine", lambda *a, **k: pytest.fail("drawn"))
    with pytest.raises(bpv.BackpropError, match=r"a GIF of 3 frames of .* pixels \(at 96 dpi\) "
                                                r"would hold .*megapixels.*Pass dpi=95 or less .*"
                                                r"or pass steps=range\(a, b\) with at most 2 "
                                                r"steps.*flipbook"):
        r.gif(steps=steps, dpi=96)


def test_gif_too_big_even_at_the_lowest_dpi_is_refused(no_drawing, monkeypatch):
    r = draw.renderer(notes_trace())
    w, h = export.raster_size(r, range(15), dpi=export.MIN_DPI)
    monkeypatch.setattr(export, "MAX_GIF_PIXELS", 15 * w * h - 1)
    most = (15 * w * h - 1) // np.prod(export.raster_size(r, range(15)))     # at 96 dpi
    with pytest.raises(bpv.BackpropError, match=r"a GIF of 15 frames.*No dpi of at least 36 .*"
                                                rf"steps=range\(a, b\) with at most {most} "
                                                r"steps.*flipbook"):
        r.gif()
    assert no_drawing == []


def test_gif_frames_above_the_real_limits_are_refused_before_drawing(no_drawing):
    # 49 nodes, 48 frames of 5.8 megapixels at 96 dpi: 280 megapixels in all
    r = draw.renderer(bpv.circuit(notes_trace()))
    w, h = export.raster_size(r, range(len(r.trace) + 1))
    assert w * h < export.MAX_GIF_FRAME_PIXELS < export.MAX_GIF_PIXELS < (len(r.trace) + 1) * w * h
    with pytest.raises(bpv.BackpropError, match=r"a GIF of 48 frames .*would hold .*megapixels"
                                                r".*Pass dpi=\d+ or less.*steps=range\(a, b\)"):
        r.gif(dpi=96)
    # a tall graph: each frame alone is too big at 96 dpi
    r = draw.renderer(chain(20))
    w, h = export.raster_size(r, [0, 1])
    assert w * h > export.MAX_GIF_FRAME_PIXELS
    with pytest.raises(bpv.BackpropError, match=r"GIF's frames of this graph at 96 dpi would be "
                                                r".*more than a GIF frame may have.*flipbook"):
        r.gif(steps=[0, 1], dpi=96)
    assert no_drawing == []


def test_gif_of_too_many_frames_is_refused_without_listing_them(no_drawing):
    r = draw.renderer(notes_trace())
    for steps in (range(10 ** 12), itertools.cycle([0, 1])):
        with pytest.raises(bpv.BackpropError, match=r"frames .*at most 120 frames.*steps=range"
                                                    r"\(a, b\) with at most 120 steps.*flipbook"):
            r.gif(steps=steps)
    with pytest.raises(bpv.BackpropError, match=r"steps is empty"):
        r.gif(steps=[])
    for ms in (0, -1, float("nan"), True, "900"):
        with pytest.raises(bpv.BackpropError, match=r"ms_per_step"):
            r.gif(ms, steps=[0])
    assert no_drawing == []


def test_gif_lowers_its_dpi_to_fit_and_says_so(monkeypatch):
    r = draw.renderer(chain(20))                  # 28-megapixel frames at 96 dpi
    sent = []
    real = engines.run_engine
    monkeypatch.setattr(engines, "run_engine", lambda src, fmt="json", engine=None:
                        sent.append(src) or real(src, fmt, engine))
    with pytest.warns(UserWarning, match=r"more than a GIF frame may have.*drawn at (\d+) dpi"):
        gif = r.gif(steps=[0, 1])
    fit = int(sent[0].split("dpi=")[1].split()[0].strip(";"))
    assert all(f"dpi={fit}" in src for src in sent) and export.MIN_DPI <= fit < 96
    n, (w, h) = gif_frames(gif)
    assert n == 2 and w * h <= export.MAX_GIF_FRAME_PIXELS
    assert all(got <= most for got, most in zip((w, h), export.raster_size(r, [0, 1], dpi=fit)))


def test_an_allowed_gif_is_the_png_frames(tmp_path):
    from PIL import Image
    pic = bpv.render(notes_trace(), 9)
    path = pic.save_gif(tmp_path / "a.gif", ms_per_step=500, steps=range(8, 11))
    im = Image.open(path)
    pngs = [Image.open(io.BytesIO(pic.renderer.png(k))).convert("RGB") for k in (8, 9, 10)]
    assert im.n_frames == 3 and im.size == (max(p.width for p in pngs),
                                            max(p.height for p in pngs))
    for i, png in enumerate(pngs):
        im.seek(i)
        frame = np.asarray(im.convert("RGB"), dtype=int)[:png.height, :png.width]
        # one palette for every frame: white stays white, the drawing's colours stay close
        assert np.abs(frame - np.asarray(png, dtype=int)).mean() < 0.5
        assert im.info["duration"] == 500


def _png_header(w: int, h: int) -> bytes:
    """A PNG that claims w×h pixels (and holds almost nothing): a decompression bomb."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_a_frame_larger_than_computed_is_refused_before_decoding(monkeypatch):
    """Were Graphviz ever to draw more than the layout says, the frames' headers are read and
    checked before any frame is decoded."""
    r = draw.renderer(notes_trace())
    monkeypatch.setattr(engines, "run_engine", lambda src, fmt="json", engine=None:
                        _png_header(40_000, 40_000))
    with pytest.raises(bpv.BackpropError, match=r"as Graphviz drew them.*lower dpi"):
        r.gif(steps=[0, 1])


def test_pils_decompression_bomb_error_never_escapes(monkeypatch):
    from PIL import Image
    r = draw.renderer(notes_trace())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)       # PIL refuses anything larger
    with pytest.raises(bpv.BackpropError, match=r"too large to decode.*flipbook") as e:
        r.gif(steps=[0])
    assert not isinstance(e.value, Image.DecompressionBombError)
