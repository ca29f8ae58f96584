"""The renderer: DOT source (no binary needed), SVG per step under both engines, export, escaping."""
import json
import html
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from backpropviz.core.keys import Key
import backpropviz as bpv
from backpropviz.display import draw, engines, style
from backpropviz.display.layout import forget_layouts

ENGINES = []
for _e in ("dot", "graphviz-pure"):
    try:
        draw.find_engine(_e)
        ENGINES.append(_e)
    except draw.EngineMissing:
        ENGINES.append(pytest.param(_e, marks=pytest.mark.skip(
            reason=f"Graphviz engine {_e!r} is not installed here (./dev test installs both)")))

SVG_NS = "{http://www.w3.org/2000/svg}"


def notes_trace():
    x = np.array([1.0, 2.0])
    W1 = np.array([[0.1, 0.2], [0.3, 0.4]])
    W2 = np.array([[0.5, -0.5]])
    net = bpv.Sequential([bpv.MM(W1, np.zeros(2)), bpv.ReLU(), bpv.MM(W2, np.zeros(1)),
                          bpv.Sigmoid()], loss=bpv.SquaredLoss())
    return net.backprop(x, [1.0])


@pytest.fixture(autouse=True)
def fresh_layouts():
    forget_layouts()
    yield
    forget_layouts()


# --- DOT source: no binary needed ----------------------------------------------------------------

def test_dot_source_has_every_node_module_and_edge():
    tr = notes_trace()
    r = draw.Renderer(tr, layout=draw.Layout(tr, place=False))
    src = r.dot(9)
    for n in tr.nodes:
        assert f"{n.name}  " in src            # every value node, by name, in a label
    for m in tr.modules:
        assert f"{m.name}: {m.label}" in src
    assert src.count("->") == sum(len(m.inputs) + len(m.params) + 1 for m in tr.modules)
    assert "fixedsize=true" in src


def test_dot_source_marks_unknown_gradients_blank_and_known_ones_with_numbers():
    tr = notes_trace()
    r = draw.Renderer(tr, layout=draw.Layout(tr, place=False))
    before = r.dot(tr.n_forward)          # forward done, no gradient yet
    after = r.dot(len(tr))
    assert "∂J/∂W[2]: ······" in before
    assert "∂J/∂W[2]: [[-0.07021, -0.1545]]" in after
    assert "∂J/∂W[2]: ······" in r.dot(8) and "∂J/∂W[2]: [[-0.07021" in r.dot(9)
    assert "(7.65)" in r.dot(9)            # the caption carries the tag


def test_node_sizes_depend_on_shapes_not_numbers():
    net = bpv.mlp([2, 3, 1], seed=0)
    a = net.backprop([0.1, 0.2], 1)
    b = net.backprop([-1234.5, 0.0001], 0)
    la, lb = draw.Layout(a, place=False), draw.Layout(b, place=False)
    assert la.signature == lb.signature
    assert la.dot_source() == lb.dot_source()


# --- SVG under each engine -------------------------------------------------------------------

def svg_tree(svg: str):
    return ET.fromstring(svg)


def rect_geometry(svg: str):
    return sorted(re.findall(r'<rect data-id="v\d+" class="[^"]*" x="([\d.]+)" y="([\d.]+)" width', svg))


@pytest.mark.engine
@pytest.mark.parametrize("engine", ENGINES)
def test_stepping_restyles_without_moving_anything(engine):
    tr = notes_trace()
    r = draw.Renderer(tr, engine=engine)
    frames = [r.svg(k) for k in range(len(tr) + 1)]      # frames[k] is step k
    geo = [re.findall(r'<g id="(v\d+)" class="node" data-node="[^"]*"><title data-id="v\d+\.t">[^<]*</title>'
                      r'<rect data-id="v\d+" class="[^"]*" x="(-?[\d.]+)" y="(-?[\d.]+)"', f) for f in frames]
    assert all(g == geo[0] for g in geo) and len(geo[0]) == len(tr.nodes)
    # one fewer blank gradient per backward step that writes a gradient shown in a box
    blanks = [f.count("data-blank=") for f in frames]
    assert blanks[0] == blanks[tr.n_forward] + tr.n_forward   # values are blank until computed
    assert blanks[tr.n_forward] > 0
    assert blanks[-1] == 0
    assert all(a >= b for a, b in zip(blanks, blanks[1:]))
    for k, f in enumerate(frames):
        root = svg_tree(f)                              # well-formed XML
        assert root.get("data-step") == str(k)


@pytest.mark.engine
@pytest.mark.parametrize("engine", ENGINES)
def test_current_step_highlights_module_and_nodes(engine):
    tr = notes_trace()
    r = draw.Renderer(tr, engine=engine)
    k = 9                                               # (B2) (7.65): ∂J/∂W[2] = ∂J/∂u[3] u[2]ᵀ
    assert tr.specs[k - 1].tag == "(7.65)" and tr.steps[k - 1].number == k
    svg = r.svg(k)
    assert re.search(r'data-module="M_3"><ellipse data-id="m\d+" class="oval cur-B"', svg)
    assert re.search(r'data-node="W\[2\]"><title data-id="v\d+\.t">[^<]*</title><rect data-id="v\d+" class="box param cur-B"', svg)
    assert re.search(r'data-node="u\[2\]"><title data-id="v\d+\.t">[^<]*</title><rect data-id="v\d+" class="box value read read-B"', svg)
    assert re.search(r'data-node="u\[3\]"><title data-id="v\d+\.t">[^<]*</title><rect data-id="v\d+" class="box value read read-B"', svg)
    assert not re.search(r'data-node="W\[2\]"><title data-id="v\d+\.t">[^<]*</title><rect data-id="v\d+" class="[^"]*read', svg)
    assert "∂J/∂W[2] = ∂J/∂u[3] u[2]ᵀ" in svg
    assert "[[-0.1404]] [[0.5, 1.1]]" in svg              # the column v, then the row zᵀ
    assert "[[-0.07021, -0.1545]]" in svg
    fwd = r.svg(1)
    assert re.search(r'data-module="M_1"><ellipse data-id="m\d+" class="oval cur-F"', fwd)
    assert "cur-B\"" not in fwd and "class=\"edge back" not in fwd
    # the backward pass has travelled M_4, M_5 edges by step 9 but not M_1's
    assert svg.count("class=\"edge back") >= 2


def skip_trace():
    """A skip connection: u[0] feeds M_1 and the sum M_3, so its gradient is summed (7.53)."""
    mm = bpv.MM(np.array([[0.5, -0.3], [0.2, 0.8]]), np.array([0.1, -0.1]))
    return bpv.trace(lambda z: ((mm(z).tanh() + z) ** 2).sum(), np.array([1.0, 2.0]))


def expected_reads(tr, k):
    """The nodes step k's rule reads (from its expression), other than the node it writes."""
    spec = tr.specs[k - 1]
    return {key.node for key in spec.reads} - {spec.node}


def svg_marked(svg, word):
    """Nodes whose box in the SVG has a class containing ``word``."""
    out = set()
    for g in ET.fromstring(svg).iter(SVG_NS + "g"):
        if g.get("class") == "node":
            rect = g.find(SVG_NS + "rect")
            if word in rect.get("class", "").split():
                out.add(g.get("data-node"))
    return out


def dot_node_attrs(src, layout):
    """A node's DOT attributes (its HTML label left out), by node name."""
    names = {b.id: b.name for b in layout.boxes.values()}
    out = {}
    for line in src.splitlines():
        m = re.match(r"\t(v\d+) \[(.*)\]$", line)
        if m and m[1] in names:
            out[names[m[1]]] = re.sub(r"label=<<TABLE.*</TABLE>>", "", m[2])
    assert set(out) == set(names.values())
    return out


def graphviz_dotted(svg, layout):
    """Nodes Graphviz itself drew with a dotted outline (style=dotted is dasharray 1,5)."""
    names = {b.id: b.name for b in layout.boxes.values()}
    out = set()
    for g in ET.fromstring(svg).iter(SVG_NS + "g"):
        title = g.find(SVG_NS + "title")
        if g.get("class") == "node" and title is not None and title.text in names:
            if any(el.get("stroke-dasharray") == "1,5" for el in g.iter()):
                out.add(names[title.text])
    return out


def test_read_highlights_are_exactly_what_the_rule_reads():
    tr = notes_trace()
    reads = {k: expected_reads(tr, k) for k in range(1, len(tr) + 1)}
    assert reads[9] == {"u[3]", "u[2]"}            # (7.65) ∂J/∂W = v zᵀ: v and z
    assert reads[10] == {"u[3]"}                   # (7.66) ∂J/∂b = v: only ∂J/∂u[3]
    assert reads[11] == {"W[2]", "u[3]"}           # (7.63) Wᵀv: W and v, not b
    assert reads[6] == set()                       # the seed reads nothing
    sk = skip_trace()
    assert sk.specs[-1].kind == "acc" and expected_reads(sk, len(sk)) == set()


@pytest.mark.engine
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("which", ["notes", "skip"])
def test_svg_dot_and_png_highlight_the_same_read_nodes(engine, which, monkeypatch):
    tr = notes_trace() if which == "notes" else skip_trace()
    r = draw.Renderer(tr, engine=engine)
    sent = []
    real = engines.run_engine
    monkeypatch.setattr(engines, "run_engine", lambda src, fmt="json", engine=None:
                        sent.append((src, fmt)) or real(src, fmt, engine))
    assert not svg_marked(r.svg(0), "read") and "dotted" not in r.dot(0)
    for k in range(1, len(tr) + 1):
        want = expected_reads(tr, k)
        spec = tr.specs[k - 1]
        svg = r.svg(k)
        assert svg_marked(svg, "read") == want, (k, spec)
        assert svg_marked(svg, "cur-F") | svg_marked(svg, "cur-B") == {spec.node}, (k, spec)
        src = r.dot(k)
        attrs = dot_node_attrs(src, r.layout)
        assert {n for n, a in attrs.items() if "style=dotted" in a} == want, (k, spec)
        assert {n for n, a in attrs.items() if "penwidth=3" in a} == {spec.node}, (k, spec)
        # the PNG is Graphviz's drawing of that same DOT: Graphviz draws those nodes dotted
        sent.clear()
        assert r.png(k)[:8] == b"\x89PNG\r\n\x1a\n"
        assert sent == [(src, "png")]
        assert graphviz_dotted(real(src, "svg", engine).decode("utf-8"), r.layout) == want, k


@pytest.mark.engine
@pytest.mark.parametrize("which", ["notes", "small"])
def test_legend_names_every_mark_and_fits_the_drawing(which):
    tr = notes_trace() if which == "notes" else bpv.trace(lambda z: (z ** 2).sum(),
                                                            np.array([1.0]))
    svg = bpv.render(tr, 3).svg
    root = ET.fromstring(svg)
    legend = next(g for g in root.iter(SVG_NS + "g") if g.get("class") == "legend")
    words = [t.text for t in legend.iter(SVG_NS + "text")]
    for word in ("read", "written", "loss J", "parameter θ", "forward (F)", "not yet computed"):
        assert word in words
    width = float(root.get("width"))
    _, top, _, height = map(float, root.get("viewBox").split())
    for t in legend.iter(SVG_NS + "text"):     # no entry is cut off by a narrow drawing
        x, y = float(t.get("x")), float(t.get("y"))
        assert 0 <= x and x + len(t.text) * style.LEGEND_CHAR_W <= width, t.text
        assert top < y <= top + height, t.text


@pytest.mark.engine
def test_svg_is_labelled_for_screen_readers():
    tr = notes_trace()
    root = ET.fromstring(bpv.render(tr, 9).svg)
    assert root.get("role") == "img"
    title, desc = root.find(SVG_NS + "title"), root.find(SVG_NS + "desc")
    assert title.text == "step 9/14 · backward 4/9 · (B2) (7.65) · M_3 = MM[W[2], b[2]]"
    assert "∂J/∂W[2] = ∂J/∂u[3] u[2]ᵀ" in desc.text and "[[-0.07021, -0.1545]]" in desc.text
    assert root.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]
    # a page shows many drawings: another trace at the same step labels itself, not this one
    other = bpv.mlp([2, 3, 1], seed=0).backprop([0.1, 0.2], 1)
    root2 = ET.fromstring(bpv.render(other, 9).svg)
    ids = [root2.find(SVG_NS + "title").get("id"), root2.find(SVG_NS + "desc").get("id")]
    assert root2.get("aria-labelledby").split() == ids
    assert not set(ids) & {title.get("id"), desc.get("id")}
    assert bpv.render(tr, 9).svg == bpv.render(tr, 9).svg      # the same step: the same SVG


@pytest.mark.engine
def test_picture_shows_itself_as_svg_and_text():
    tr = notes_trace()
    pic = bpv.render(tr, 4)
    bundle = pic._repr_mimebundle_()
    assert bundle["image/svg+xml"].startswith("<svg")
    assert "step 4/14 · forward 4/5 · (F)" in bundle["text/plain"]
    assert pic.source.startswith("digraph")
    assert pic.graphviz().source == pic.source
    assert "step 0/14 · before the first step" in bpv.render(tr, 0).text
    assert "step 14/14" in bpv.render(tr).text               # default: all done
    for bad in (99, -1, len(tr) + 1):
        with pytest.raises(bpv.BackpropError, match="out of range"):
            bpv.render(tr, bad)


@pytest.mark.engine
def test_layout_is_reused_for_a_new_trace_of_the_same_graph(monkeypatch):
    net = bpv.mlp([2, 3, 1], seed=0)
    bpv.render(net.backprop([0.1, 0.2], 1), 0)
    calls = []
    real = engines.run_engine
    monkeypatch.setattr(engines, "run_engine", lambda *a, **k: calls.append(a) or real(*a, **k))
    pic = bpv.render(net.backprop([0.7, -0.3], 0), 6)
    assert pic.svg and calls == []


# --- NaN / inf, size limit, missing engine ----------------------------------------------------

@pytest.mark.engine
def test_inf_gradient_is_drawn_and_flagged():
    tr = bpv.trace(lambda z: (z ** 0.5).sum(), np.array([0.0, 4.0]))
    assert np.isinf(tr.grad("u[0]")[0])
    svg = bpv.render(tr, len(tr)).svg
    assert 'class="bad"' in svg and "inf" in svg and "⚠" in svg


def test_too_big_graph_is_refused_with_its_size():
    def f(z):
        for _ in range(1600):
            z = z.sin()
        return z.sum()
    tr = bpv.trace(f, np.array([0.1]))
    with pytest.raises(bpv.BackpropError, match=r"has 320\d nodes.*module-level"):
        draw.Layout(tr, place=False)


def test_missing_engine_names_three_ways_and_show_falls_back_to_text(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    tr = notes_trace()
    with pytest.raises(draw.EngineMissing, match=r"apt-get install graphviz.*conda.*pip install"):
        bpv.render(tr, 0)
    shown = bpv.show(tr, 9)
    assert "drawing unavailable" in capsys.readouterr().out
    assert "∂J/∂W[2] = ∂J/∂u[3] u[2]ᵀ" in repr(shown)


@pytest.mark.engine
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_warnings_never_reach_output(engine, capfd):
    # graphviz-pure warns on stderr about non-ASCII widths: it must stay captured
    tr = notes_trace()
    draw.Renderer(tr, engine=engine).png(0)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --- escaping ------------------------------------------------------------------------------------

NASTY = ['a"b', "{x}", "<script>alert(1)</script>", "R&D", "]", "a\\lb\\", "σ→ü 名"]
OUR_TAGS = {"svg", "title", "desc", "style", "text", "g", "rect", "ellipse", "path", "polygon",
            "line"}
OUR_ATTRS = {"xmlns", "class", "width", "height", "viewBox", "data-step", "x", "y", "rx", "ry",
             "cx", "cy", "d", "points", "text-anchor", "id", "data-module", "data-node",
             "data-key", "data-blank", "x1", "y1", "x2", "y2", "stroke", "stroke-width",
             "stroke-dasharray", "style", "role", "aria-labelledby", "fill", "data-id"}


def nasty_trace(name):
    W = np.array([[1.0, -2.0], [0.5, 0.25]])
    mm = bpv.MM(W, np.zeros(2), name=name, param_names=(name + "W", name + "b"))
    net = bpv.Sequential([mm, bpv.Tanh(name=name + "σ")], loss=bpv.SquaredLoss(name=name))
    return net.backprop([0.3, -0.7], [0.0, 1.0])


@pytest.mark.engine
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", NASTY)
def test_user_names_are_escaped_everywhere(engine, name):
    tr = nasty_trace(name)
    r = draw.Renderer(tr, engine=engine)
    for k in (0, 3, len(tr)):
        svg = r.svg(k)
        root = ET.fromstring(svg)
        for el in root.iter():
            tag = el.tag.replace(SVG_NS, "")
            assert tag in OUR_TAGS, tag
            assert set(el.attrib) <= OUR_ATTRS, set(el.attrib) - OUR_ATTRS
        texts = "".join(root.itertext())
        assert name.replace("\n", " ") in texts.replace("\n", " ")
        assert "<script" not in svg
    png = r.png(len(tr))                    # dot accepts the escaped DOT
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    html = r.flipbook(title=name)
    assert "<script>alert" not in html


# --- export ---------------------------------------------------------------------------------------

@pytest.mark.engine
def test_export_svg_png_flipbook_gif(tmp_path):
    from PIL import Image
    tr = notes_trace()
    pic = bpv.render(tr, 9)
    svg = pic.save_svg(tmp_path / "s.svg").read_text(encoding="utf-8")
    assert ET.fromstring(svg).tag == SVG_NS + "svg"
    png = Image.open(pic.save_png(tmp_path / "s.png"))
    assert png.format == "PNG" and png.width > 200
    html = pic.save_flipbook(tmp_path / "f.html", title="2-layer example").read_text("utf-8")
    assert html.count("<svg") == 1                     # the drawing once, the steps as data
    data = json.loads(re.search(r'<script id="bpv-data" type="application/json">(.*?)</script>',
                                html, re.S)[1])
    assert data["n"] == len(tr) and len(data["steps"]) == len(tr) and len(data["eq"]) == len(tr) + 1
    assert data["steps"][8][1:3] == ["M_3", "W[2]"] and sorted(data["steps"][8][3]) == ["u[2]", "u[3]"]
    assert 'id="slider"' in html and 'id="prev"' in html and 'id="next"' in html
    assert "∂J/∂W[2] = ∂J/∂u[3] u[2]ᵀ" in html
    external = re.findall(r'(?:src|href)\s*=\s*"(?!#)[^"]*"', html)
    assert external == [] and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    gif = Image.open(pic.save_gif(tmp_path / "a.gif"))
    assert gif.format == "GIF" and gif.n_frames == len(tr) + 1


def _big_trace(n):
    def f(z):
        for i in range(n):
            z = (z * 1.01).sin() if i % 2 else z + 0.1
        return z.sum()
    return bpv.trace(f, np.array([0.3, -0.2]))


def test_exports_of_a_big_graph_are_bounded():
    """The flipbook holds the drawing once and per step only what changes; a GIF (one Graphviz
    run per frame) is refused above its limits with what to do instead."""
    small, big = _big_trace(20), _big_trace(200)
    sizes = [len(draw.renderer(t).flipbook()) for t in (small, big)]
    per_node = sizes[1] / (len(big.nodes) + len(big))
    assert per_node < 3 * sizes[0] / (len(small.nodes) + len(small))     # linear, not quadratic
    with pytest.raises(bpv.BackpropError, match=r"frames .* steps=range\(a, b\).*flipbook"):
        draw.renderer(big).gif()
    frames = draw.renderer(small).gif(steps=range(0, 5))
    from PIL import Image
    import io
    assert Image.open(io.BytesIO(frames)).n_frames == 5


def test_flipbook_data_cannot_close_its_script():
    mm = bpv.MM(np.eye(2), name="</script><script>alert(1)</script>")
    tr = bpv.trace(lambda z: mm(z).sum(), np.array([1.0, 2.0]))
    html = draw.renderer(tr).flipbook(title="</script>")
    body = html.split('<script id="bpv-data" type="application/json">', 1)[1]
    data = body.split("</script>", 1)[0]
    assert "<" not in data and json.loads(data)["n"] == len(tr)


def test_long_names_are_shortened_in_drawings_only():
    name = "a" * 150
    mm = bpv.MM(np.eye(2), name=name)
    tr = bpv.trace(lambda z: mm(z).sum(), np.array([1.0, 2.0]))
    svg = bpv.render(tr, 1).svg
    assert "a" * 47 + "…" in svg and "a" * 60 not in svg.split("<desc")[0].split("<title")[0]
    assert name in bpv.step_text(tr, 1)


def test_graphviz_errors_show_graphvizs_own_line():
    with pytest.raises(bpv.BackpropError, match=r"Graphviz .*failed: .*(syntax|rror)") as info:
        engines.run_engine("digraph { a -> }", "svg")
    assert len(str(info.value)) < 500


def test_backslash_l_in_a_name_is_text_not_a_dot_line_break():
    mm = bpv.MM(np.eye(2), np.zeros(2), name=r"\lambda-layer")
    tr = bpv.trace(lambda z: (mm(z) ** 2).sum(), np.array([1.0, 2.0]))
    src = draw.Renderer(tr, layout=draw.Layout(tr, place=False)).dot(1)
    caption = next(line for line in src.splitlines() if "labelloc" in line)
    assert r"M_1 = \\lambda-layer\l" in caption


@pytest.mark.parametrize("bad", ["two\nlines", "nul\x00", "tab\x0b", "a\ud800b", "x" * 201, ""])
def test_names_that_cannot_be_shown_are_refused_where_they_enter(bad):
    with pytest.raises(bpv.BackpropError, match="name"):
        bpv.MM(np.eye(2), name=bad)
    with pytest.raises(bpv.BackpropError, match="name"):
        bpv.MM(np.eye(2), param_names=(bad, "b"))
    with pytest.raises(bpv.BackpropError, match="name"):
        bpv.trace(lambda a: a.sum(), np.ones(2), names=[bad])


def test_hovering_a_node_shows_what_is_known_and_the_rule_that_wrote_it():
    tr = notes_trace()
    r = draw.Renderer(tr)

    def tip(k, node):
        m = re.search(r'class="node" data-node="' + re.escape(node) + r'"><title data-id="v\d+\.t">([^<]*)</title>',
                      r.svg(k))
        return html.unescape(m.group(1))
    k_u1 = int(tr.known_at(Key("u[1]")))
    k_g1 = int(tr.known_at(Key.gradient("u[1]")))
    assert tip(k_u1 - 1, "u[1]") == "u[1]: not yet computed\n∂J/∂u[1]: not yet computed"
    t = tip(k_u1, "u[1]")
    assert t.startswith("u[1] = [") and f"written at step {k_u1}, (F): u[1] = W[1] u[0] + b[1]" in t
    assert t.endswith("∂J/∂u[1]: not yet computed")        # nothing before its step
    t = tip(k_g1, "u[1]")
    assert f"written at step {k_g1}, {tr.specs[k_g1 - 1].tag}: ∂J/∂u[1] = " in t
    assert tip(0, "W[1]").startswith("W[1] = [[") and "(given)" in tip(0, "W[1]")
