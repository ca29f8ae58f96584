// The Stepper in the page (anywidget): its bar of controls and its graph panel.
//
// The kernel decides; this module only shows and asks. The bar sends {move, how}, {granularity},
// {expand}, {notation} and shows the model's state from its traits; the graph receives the drawing once per
// graph (trait `drawing`) and then, per step, a message with only the scene entries that changed
// ({data-id: class, hover text or row markup}, made by display/paint.py's Painter.scene).

const KEYS = { ArrowLeft: "prev", ArrowRight: "next", Home: "reset", End: "end" };
const LABEL_PX = 11;                // the drawing's smallest text (edge labels, style.py)

function h(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function typing(t) {                // arrows in these move a caret or a choice, not the step
  const tag = t.tagName;
  return tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable ||
    (tag === "INPUT" && !/^(checkbox|button|submit|range)$/.test(t.type));
}

// --- the bar: navigation, play, the step slider, the view (modules | scalar circuit), expand ---

function renderBar({ model, el }) {
  const root = h("div", { class: "bpv-bar", role: "toolbar", "aria-label": "step through the pass" });
  const nav = h("div", { class: "bpv-nav" });
  const btn = (cls, text, label, keys, more) => {    // named by `label`, explained by `more`
    const b = h("button", { type: "button", class: `bpv-btn ${cls}`,
                             title: more ? `${label}: ${more}` : label, "aria-label": label }, text);
    if (keys) b.setAttribute("aria-keyshortcuts", keys);
    return b;
  };
  const reset = btn("bpv-reset", "reset", "reset", "Home", "back to step 0, before the first step");
  const prev = btn("bpv-prev", "◀ step", "previous step", "ArrowLeft");
  const next = btn("bpv-next", "step ▶", "next step", "ArrowRight", "next step: apply one rule");
  const back = btn("bpv-to-backward", "to backward pass", "",
                   "jump to the first backward step, ∂J/∂u[k] = 1");
  const end = btn("bpv-end", "end", "end", "End", "last step: the whole pass done");
  const counter = h("output", { class: "bpv-counter", "aria-live": "polite", "aria-atomic": "true" });
  const play = btn("bpv-play", "▶ play", "play", "", "one step every interval");
  const repeat = btn("bpv-repeat", "↻", "repeat", "", "start again after the last step");
  const slider = h("input", { type: "range", class: "bpv-slider", min: "0", step: "1",
                               "aria-label": "step" });
  nav.append(reset, prev, next, back, end, counter, play, repeat, slider);

  const views = h("div", { class: "bpv-views" });
  const viewSel = h("select", { class: "bpv-granularity", "aria-label": "view",
    title: "granularity of the steps: modules, or the scalar circuit of Theorem 7.4.1" });
  const viewLab = h("label", { class: "bpv-label" }, "view ");
  viewLab.append(viewSel);
  const expSel = h("select", { class: "bpv-expand", "aria-label": "expand a module",
    title: "open one module into its multiplications, additions, … while the rest stays whole" });
  const expLab = h("label", { class: "bpv-label" }, "expand ");
  expLab.append(expSel);
  const notSel = h("select", { class: "bpv-notation", "aria-label": "notation",
    title: "the names of the steps: the tool's u[i], M_i, or the lines of the notes' Algorithm 3 with z[k], a[k]" });
  const notLab = h("label", { class: "bpv-label" }, "notation ");
  notLab.append(notSel);
  const proj = btn("bpv-projector", "projector", "projector mode", "", "large text and nodes that follow the step, for the back of a room");
  views.append(viewLab, expLab, notLab, proj);
  const msg = h("div", { class: "bpv-bar-message", role: "status" });
  root.append(nav, views, msg);
  el.append(root);

  let waiting = false, timer = null, lastFocus = null, pending = null, dragging = false;
  const ask = (content) => model.send(content);
  // a move names the trace it was computed in (`version`): one asked for just before a view
  // switch arrives after it and is dropped, not applied to the other trace's steps
  const move = (k, how) => { waiting = true; ask({ move: k, how, v: model.get("version") }); };
  const actions = {
    reset: () => move(0, "button"),
    prev: () => move(model.get("step") - 1, "button"),
    next: () => move(model.get("step") + 1, "button"),
    end: () => move(model.get("n"), "button"),
  };
  reset.onclick = actions.reset; prev.onclick = actions.prev; next.onclick = actions.next;
  end.onclick = actions.end;
  back.onclick = () => move(model.get("n_forward") + 1, "button");
  // dragging sends the latest position once the previous one has been answered, not every one
  slider.oninput = () => {
    if (waiting) pending = Number(slider.value);
    else move(Number(slider.value), "slider");
  };
  slider.onpointerdown = () => { dragging = true; };
  slider.onpointerup = slider.onpointercancel = () => { dragging = false; };
  play.onclick = () => { model.set("playing", !model.get("playing")); model.save_changes(); };
  repeat.onclick = () => { model.set("repeat", !model.get("repeat")); model.save_changes(); };
  proj.onclick = () => { model.set("projector", !model.get("projector")); model.save_changes(); };
  viewSel.onchange = () => { waiting = true; ask({ granularity: viewSel.value }); };
  expSel.onchange = () => { waiting = true; ask({ expand: expSel.value }); };
  notSel.onchange = () => { waiting = true; ask({ notation: notSel.value }); };
  root.addEventListener("focusin", (e) => { lastFocus = e.target; });

  // ← → Home End anywhere in the Stepper: heard on the document before JupyterLab (which would
  // move between cells), for the events inside this bar's Stepper only; nothing in the DOM changes
  const mine = (t) => {
    const s = el.closest(".bpv-stepper");
    return t instanceof Node && (s ? s.contains(t) : el.contains(t));
  };
  const onKey = (e) => {
    const what = KEYS[e.key];
    if (!what || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || !mine(e.target)) return;
    if (typing(e.target) || e.target === slider || e.target.closest(".noUi-target")) return;
    e.stopPropagation();
    e.preventDefault();
    const b = { reset, prev, next, end }[what];
    if (!b.disabled) actions[what]();
  };
  document.addEventListener("keydown", onKey, true);

  function options(sel, pairs, value) {
    const now = Array.from(sel.options).map((o) => [o.value, o.textContent]);
    if (JSON.stringify(now) !== JSON.stringify(pairs)) {
      sel.replaceChildren(...pairs.map(([v, t]) => h("option", { value: v }, t)));
    }
    sel.value = value;
  }

  function keepFocus() {      // ▶ or end disabled at the end (◀, reset at the start) would drop it
    const a = document.activeElement;
    if (!lastFocus || !lastFocus.disabled || (a && a !== document.body && a !== lastFocus)) return;
    const other = lastFocus === next || lastFocus === end ? prev : next;
    if (!other.disabled) other.focus({ preventScroll: true });
  }

  function show() {
    const k = model.get("step"), n = model.get("n"), locked = model.get("locked");
    counter.textContent = model.get("counter");
    counter.style.minWidth = `${model.get("counter_chars") + 2}ch`;
    slider.max = String(n);
    if (!dragging || pending === null) slider.value = String(k);   // not under the pointer
    slider.setAttribute("aria-valuetext", model.get("counter"));
    slider.disabled = locked;
    reset.disabled = prev.disabled = k <= 0;
    next.disabled = end.disabled = k >= n;
    back.disabled = k === model.get("n_forward") + 1 || model.get("n_forward") >= n;
    const playing = model.get("playing");
    play.disabled = locked;
    play.textContent = playing ? "▮▮ pause" : "▶ play";   // glyphs a stock Linux font has
    play.setAttribute("aria-label", playing ? "pause" : "play");
    play.setAttribute("aria-pressed", String(playing));
    repeat.setAttribute("aria-pressed", String(model.get("repeat")));
    proj.setAttribute("aria-pressed", String(model.get("projector")));
    const s = el.closest(".bpv-stepper");
    if (s) s.classList.toggle("bpv-projecting", model.get("projector"));
    options(viewSel, model.get("granularities").map((g) => [g, g]), model.get("granularity"));
    viewLab.hidden = !model.get("circuit_ok");
    options(expSel, model.get("expand_options"), model.get("expanded"));
    expLab.hidden = !model.get("circuit_ok") || model.get("expand_options").length < 2;
    options(notSel, model.get("notation_options"), model.get("notation"));
    notLab.hidden = model.get("notation_options").length < 2;
    msg.textContent = model.get("message");
    msg.classList.toggle("bpv-error", model.get("message_error"));
    msg.setAttribute("role", model.get("message_error") ? "alert" : "status");
    keepFocus();
    tick();
  }

  function tick() {           // Play: one step each interval, after the last step has arrived
    const playing = model.get("playing") && !model.get("locked");
    if (!playing) { clearTimeout(timer); timer = null; return; }
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      if (!model.get("playing")) return;
      const k = model.get("step"), n = model.get("n");
      if (waiting) { tick(); return; }
      if (k < n) move(k + 1, "play");
      else if (model.get("repeat")) move(0, "play");
      else { model.set("playing", false); model.save_changes(); }
      tick();
    }, model.get("interval"));
  }

  const changed = () => {
    waiting = false;
    if (pending !== null) { const p = pending; pending = null; move(p, "slider"); }
    show();
  };
  const names = ["step", "n", "n_forward", "counter", "counter_chars", "locked", "interval", "playing", "repeat", "projector",
                 "granularity", "granularities", "circuit_ok", "expand_options", "expanded",
                 "notation", "notation_options", "message", "message_error"];
  names.forEach((n) => model.on(`change:${n}`, changed));
  const onMsg = (m) => { if (m && m.done) changed(); };
  model.on("msg:custom", onMsg);
  show();
  return () => {
    clearTimeout(timer);
    document.removeEventListener("keydown", onKey, true);
    names.forEach((n) => model.off(`change:${n}`, changed));
    model.off("msg:custom", onMsg);
  };
}

// --- the graph: the drawing once, then each step's changed scene entries -----------------------

function renderGraph({ model, el }) {
  const panel = h("div", { class: "bpv-graph", tabindex: "0", role: "region",
    "aria-label": "the computation graph (scrolls; ← → step)" });
  const live = h("div", { class: "bpv-sr-only", "aria-live": "polite" });
  el.append(panel, live);
  let svg = null, byId = new Map(), step = -1, base = null;
  const uid = `bpv-g${++renderGraph.views}`;      // ids unique in the page, for aria-labelledby

  function draw(initial) {   // a new view asks for the whole scene; a new graph brings its own
    const text = model.get("drawing");
    byId = new Map(); svg = null; step = -1;
    if (!text) { panel.innerHTML = model.get("fallback"); return; }
    // the drawing is markup made by the renderer, every name in it escaped (paint.py)
    panel.innerHTML = text;
    svg = panel.querySelector("svg");
    svg.querySelector("title").id = `${uid}-t`;
    svg.querySelector("desc").id = `${uid}-d`;
    svg.setAttribute("aria-labelledby", `${uid}-t ${uid}-d`);
    base = [Number(svg.getAttribute("width")), Number(svg.getAttribute("height"))];
    svg.querySelectorAll("[data-id]").forEach((e) => byId.set(e.getAttribute("data-id"), e));
    scale();
    if (initial) model.send({ hello: 1 });
  }

  function apply(m) {
    if (!svg || !m.scene) return;
    for (const [id, v] of Object.entries(m.scene)) {
      const e = byId.get(id);
      if (!e) continue;
      if (id.includes(".")) e.innerHTML = v;     // a row's markup or a hover text (escaped)
      else e.setAttribute("class", v);
    }
    svg.setAttribute("data-step", String(m.k));
    svg.querySelector("title").textContent = m.title;
    svg.querySelector("desc").textContent = m.desc;
    // what a screen reader says: where the step is, and what its rule wrote (the last line)
    live.textContent = m.k ? `${m.title} ${m.desc.split("\n").pop().trim()}` : m.title;
    step = m.k;
    requestAnimationFrame(follow);
  }

  function projector() { return model.get("projector"); }

  function scale() {         // projector mode: text ≥ 3 % of the window's height, never smaller
    if (!svg) return;
    const s = projector() ? Math.max(1, (0.03 * window.innerHeight) / LABEL_PX) : 1;
    svg.setAttribute("width", String(Math.round(base[0] * s)));
    svg.setAttribute("height", String(Math.round(base[1] * s)));
    size();
  }

  function visible() {       // the part of the window the notebook or the page shows
    let top = 0, bottom = window.innerHeight;
    const sc = el.closest(".jp-WindowedPanel-outer, .jp-Notebook");
    if (sc) {
      const r = sc.getBoundingClientRect();
      top = Math.max(top, r.top); bottom = Math.min(bottom, r.bottom);
    }
    return { top, bottom };
  }

  function size() {          // the panel: the window's height below the Stepper's bar and equation
    const stepper = el.closest(".bpv-stepper") || el;
    const v = visible();
    const above = panel.getBoundingClientRect().top - stepper.getBoundingClientRect().top;
    let px = Math.floor(v.bottom - v.top - Math.max(0, above) - 12);
    if (svg) px = Math.min(px, Math.ceil(svg.getBoundingClientRect().height) + 20);
    panel.style.height = Math.max(200, px) + "px";
  }

  function box(sel) {
    const r = sel ? svg.querySelector(sel) : null;
    return r ? r.getBoundingClientRect() : null;
  }

  function union(a, b) {
    return { top: Math.min(a.top, b.top), bottom: Math.max(a.bottom, b.bottom),
             left: Math.min(a.left, b.left), right: Math.max(a.right, b.right) };
  }

  function follow() {        // the node this step writes in view, with what its rule reads
    if (!svg || el.getClientRects().length === 0) return;       // hidden (a collapsed output)
    const cur = box("rect.cur-F, rect.cur-B");
    if (!cur) { if (step === 0) { panel.scrollTop = 0; panel.scrollLeft = 0; } return; }
    const pr = panel.getBoundingClientRect(), m = 8;
    const W = panel.clientWidth - 2 * m, H = panel.clientHeight - 2 * m;
    const fits = (u) => u.bottom - u.top <= H && u.right - u.left <= W;
    let want = cur;
    const mod = box("ellipse.cur-F, ellipse.cur-B");
    if (mod && fits(union(want, mod))) want = union(want, mod);
    for (const r of svg.querySelectorAll("rect.read")) {
      const u = union(want, r.getBoundingClientRect());
      if (fits(u)) want = u;
    }
    const top = pr.top + panel.clientTop, left = pr.left + panel.clientLeft;
    const inside = want.top >= top + m && want.bottom <= top + panel.clientHeight - m &&
      want.left >= left + m && want.right <= left + panel.clientWidth - m;
    if (!inside) {
      panel.scrollTop += (want.top + want.bottom) / 2 - (top + panel.clientHeight / 2);
      panel.scrollLeft += (want.left + want.right) / 2 - (left + panel.clientWidth / 2);
    }
    // then the page: if the node is outside the window, bring it in by the least scrolling,
    // but never past the Stepper's top (its panel fits the window below the bar, so with the
    // Stepper at the top of the window the node is in view)
    const c = svg.querySelector("rect.cur-F, rect.cur-B").getBoundingClientRect();
    const v = visible(), m2 = 8;
    const st = (el.closest(".bpv-stepper") || el).getBoundingClientRect();
    if (st.bottom < v.top || st.top > v.bottom) return;   // the learner has scrolled elsewhere
    let d = 0;
    if (c.bottom > v.bottom - m2) {
      const top = (el.closest(".bpv-stepper") || el).getBoundingClientRect().top;
      d = Math.min(c.bottom - (v.bottom - m2), Math.max(0, top - v.top));
    } else if (c.top < v.top + m2) {
      d = c.top - (v.top + m2);
    }
    if (d) scroller().scrollBy(0, d);
  }

  function scroller() {      // what scrolls the page: JupyterLab's notebook, or the nearest
    const nb = el.closest(".jp-WindowedPanel-outer");      // ancestor that scrolls (Voilà)
    if (nb) return nb;
    for (let e = el.parentElement; e; e = e.parentElement) {
      const y = getComputedStyle(e).overflowY;
      if ((y === "auto" || y === "scroll" || y === "overlay") && e.scrollHeight > e.clientHeight)
        return e;
    }
    return document.scrollingElement || document.documentElement;
  }

  panel.addEventListener("click", (e) => {     // a click on a node: open it in the inspector
    const n = e.target.closest ? e.target.closest("g.node[data-node]") : null;
    if (n) model.send({ inspect: n.getAttribute("data-node") });
  });
  const onMsg = (m) => apply(m);
  const onDrawing = () => draw(false);
  const onProjector = () => requestAnimationFrame(() => { scale(); follow(); });
  model.on("msg:custom", onMsg);
  model.on("change:drawing", onDrawing);
  const onFallback = () => { if (!model.get("drawing")) draw(false); };
  model.on("change:fallback", onFallback);
  model.on("change:projector", onProjector);
  let lastW = -1;
  const ro = window.ResizeObserver ? new ResizeObserver(() => {
    const w = el.getBoundingClientRect().width;
    if (w !== lastW) { lastW = w; size(); }
  }) : null;
  if (ro) ro.observe(el);
  const onResize = () => scale();
  window.addEventListener("resize", onResize);
  draw(true);
  requestAnimationFrame(size);
  return () => {
    model.off("msg:custom", onMsg);
    model.off("change:drawing", onDrawing);
    model.off("change:fallback", onFallback);
    model.off("change:projector", onProjector);
    if (ro) ro.disconnect();
    window.removeEventListener("resize", onResize);
  };
}

renderGraph.views = 0;

export default {
  render(ctx) {
    return ctx.model.get("part") === "bar" ? renderBar(ctx) : renderGraph(ctx);
  },
};
