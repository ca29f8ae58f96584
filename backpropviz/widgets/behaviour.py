"""What the Stepper does in the page: its CSS and one small script, as Python strings (no
front-end extension). ``BEHAVIOUR`` is the value of a hidden HTML widget: the <style>, and an image
whose onerror runs ``SCRIPT`` once the Stepper is in the page.

The layout: the equation beside the graph (above it on a narrow output); the graph at its own
size (labels 12 px, edge labels 11 px, never shrunk) in a panel as tall as the screen has room
for below the navigation bar, scrolled to the node each step writes. The script also handles
← → Home End inside the widget (JupyterLab would move between cells), and gives the controls
that ipywidgets leaves unnamed a name, pressed states and live regions.
"""
import html

CSS = """
.bpv-stepper { container: bpv-stepper / inline-size; }
.bpv-stepper .bpv-graph g.node { cursor: pointer; }
.bpv-stepper .bpv-stage { display: grid; width: 100%; column-gap: 16px; align-items: start;
  grid-template-columns: minmax(270px, 340px) minmax(0, 1fr);
  grid-template-rows: auto 1fr; grid-template-areas: "side graph" "insp graph"; }
.bpv-stepper .bpv-side { grid-area: side; min-width: 0; }
.bpv-stepper .bpv-stage > .bpv-inspector { grid-area: insp; min-width: 0; }
.bpv-stepper .bpv-equation { min-height: 118px; }
.bpv-stepper .bpv-graph { grid-area: graph; min-width: 0; margin: 2px 0;
  height: clamp(240px, calc(100vh - 250px), 760px); overflow: auto; resize: vertical;
  border: 1px solid #c8c8c8; border-radius: 4px; }
.bpv-stepper .bpv-inspector .widget-dropdown { width: auto !important; max-width: 100%; }
.bpv-stepper .bpv-graph > .widget-html-content,
.bpv-stepper .bpv-inspector .widget-html-content { line-height: normal; }
.bpv-stepper .bpv-counter { min-width: 310px; font-variant-numeric: tabular-nums; }
.bpv-stepper .bpv-answer { flex: 1 1 200px; }
@container bpv-stepper (max-width: 759px) {
  .bpv-stepper .bpv-stage { grid-template-columns: minmax(0, 1fr); grid-template-rows: none;
    grid-template-areas: "side" "graph" "insp"; }
  .bpv-stepper .bpv-side { min-height: 180px; }
  .bpv-stepper .bpv-equation { min-height: 110px; }
}
.bpv-stepper button:focus-visible, .bpv-stepper input:focus-visible,
.bpv-stepper select:focus-visible, .bpv-stepper textarea:focus-visible,
.bpv-stepper .noUi-handle:focus-visible, .bpv-stepper .bpv-graph:focus-visible,
.bpv-stepper .bpv-heatmap:focus-visible {
  outline: 3px solid #0072B2 !important; outline-offset: 2px !important;
  box-shadow: 0 0 0 5px #ffffff !important; }
"""

SCRIPT = r"""(function (img) {
  var tries = 0;
  function start() {
    var root = img.closest('.bpv-stepper');
    if (!root || !root.querySelector('.bpv-graph') || !root.querySelector('.bpv-next')
        || !root.querySelector('.bpv-slider .noUi-handle') || !root.querySelector('.bpv-play button')) {
      if (tries++ < 1200) setTimeout(start, 50);
      return;
    }
    if (root.bpvInstalled) return;
    root.bpvInstalled = true;
    install(root);
  }
  function install(root) {
    var $ = function (s) { return root.querySelector(s); };
    var $$ = function (s) { return Array.prototype.slice.call(root.querySelectorAll(s)); };
    function attr(el, k, v) { if (el && el.getAttribute(k) !== v) el.setAttribute(k, v); }
    var KEYS = {ArrowLeft: '.bpv-prev', ArrowRight: '.bpv-next', Home: '.bpv-reset', End: '.bpv-end'};
    root.addEventListener('keydown', function (e) {
      var sel = KEYS[e.key], t = e.target, tag = t.tagName;
      if (!sel || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.stopPropagation();              /* never to the notebook around the widget */
      if (t.closest('.noUi-target') || tag === 'TEXTAREA' || tag === 'SELECT' || t.isContentEditable
          || (tag === 'INPUT' && !/^(checkbox|radio|button|submit)$/.test(t.type))) return;
      e.preventDefault();
      var b = $(sel);
      if (b && !b.disabled) b.click();
    });
    var PLAY = [[/fa-pause/, 'pause'], [/fa-stop/, 'stop'], [/fa-(retweet|repeat)/, 'repeat'],
                [/fa-play/, 'play']];
    var lastSvg = null, lastH = -1, lastW = -1, queued = false, lastFocus = null;
    root.addEventListener('focusin', function (e) { lastFocus = e.target; });
    root.addEventListener('click', function (e) {   /* a click on a node: open it in the inspector */
      var n = e.target.closest ? e.target.closest('.bpv-graph g.node[data-node]') : null;
      var sel = $('.bpv-inspect select');
      if (!n || !sel) return;
      var name = n.getAttribute('data-node');
      for (var i = 0; i < sel.options.length; i++) {
        if (sel.options[i].textContent === name) {
          sel.selectedIndex = i;
          sel.dispatchEvent(new Event('change', {bubbles: true}));
          break;
        }
      }
    });
    function keepFocus() {      /* ▶ disabled at the end (◀ at the start) would drop the focus */
      var a = document.activeElement;
      if (!lastFocus || !lastFocus.disabled || (a && a !== document.body && a !== lastFocus)) return;
      var other = lastFocus.classList.contains('bpv-next') ? $('.bpv-prev') : $('.bpv-next');
      (other && !other.disabled ? other : $('.bpv-graph')).focus({preventScroll: true});
    }
    function apply() {
      queued = false;
      keepFocus();
      attr(root, 'role', 'group');
      attr(root, 'aria-label', 'backpropagation stepper');
      $$('.bpv-play button').forEach(function (b) {
        var i = b.querySelector('i'), c = (i ? i.className : '') + ' ' + b.className;
        for (var j = 0; j < PLAY.length; j++) {
          if (PLAY[j][0].test(c)) {
            var name = PLAY[j][1];
            attr(b, 'aria-label', name);
            attr(b, 'title', name === 'repeat' ? 'repeat: start again after the last step' : name);
            if (name === 'repeat')
              attr(b, 'aria-pressed', b.classList.contains('mod-active') ? 'true' : 'false');
            break;
          }
        }
      });
      $$('.widget-toggle-buttons').forEach(function (g) {
        var l = g.querySelector('.widget-label');
        attr(g, 'role', 'group');
        if (l && l.textContent.trim()) attr(g, 'aria-label', l.textContent.trim());
        Array.prototype.forEach.call(g.querySelectorAll('button'), function (b) {
          attr(b, 'aria-pressed', b.classList.contains('mod-active') ? 'true' : 'false');
        });
      });
      var counter = $('.bpv-counter');
      $$('.bpv-slider .noUi-handle').forEach(function (h) {
        attr(h, 'aria-label', 'step');
        if (counter) attr(h, 'aria-valuetext', counter.textContent.trim());
      });
      attr(counter, 'aria-live', 'polite'); attr(counter, 'aria-atomic', 'true');
      ['.bpv-equation', '.bpv-feedback', '.bpv-message'].forEach(function (s) {
        attr($(s), 'aria-live', 'polite');
      });
      attr($('.bpv-prev'), 'aria-keyshortcuts', 'ArrowLeft');
      attr($('.bpv-next'), 'aria-keyshortcuts', 'ArrowRight');
      attr($('.bpv-reset'), 'aria-keyshortcuts', 'Home');
      var g = $('.bpv-graph');
      attr(g, 'tabindex', '0'); attr(g, 'role', 'region');
      attr(g, 'aria-label', 'the computation graph (scrolls; ← → step)');
      var hm = $('.bpv-heatmap');
      attr(hm, 'tabindex', '0'); attr(hm, 'role', 'region'); attr(hm, 'aria-label', 'heatmap');
      follow(g);
    }
    function viewport() {       /* the part of the screen the notebook or page shows */
      var top = 0, bottom = window.innerHeight;
      var sc = root.closest('.jp-WindowedPanel-outer, .jp-Notebook');
      if (sc) { var r = sc.getBoundingClientRect(); top = Math.max(top, r.top);
                bottom = Math.min(bottom, r.bottom); }
      return bottom - top;
    }
    function size(g, svg) {     /* the graph's panel: what fits below the navigation bar */
      var nav = $('.bpv-nav') || root;
      var above = g.getBoundingClientRect().top - nav.getBoundingClientRect().top;
      var h = Math.floor(viewport() - above - 16);
      if (svg) h = Math.min(h, Math.ceil(svg.getBoundingClientRect().height) + 20);
      g.style.height = Math.max(240, h) + 'px';
    }
    function follow(g) {        /* a new drawing: keep the node this step writes in view */
      var svg = g && g.querySelector('svg[data-step]');
      if (!svg || svg === lastSvg) return;
      lastSvg = svg;
      var h = svg.getAttribute('height');
      if (h !== lastH) { lastH = h; size(g, svg); }
      var cur = svg.querySelector('rect.cur-F, rect.cur-B');
      if (!cur) { if (svg.getAttribute('data-step') === '0') { g.scrollTop = 0; g.scrollLeft = 0; } return; }
      var gr = g.getBoundingClientRect(), c = cur.getBoundingClientRect(), m = 6;
      var top = gr.top + g.clientTop, left = gr.left + g.clientLeft;
      if (c.top >= top + m && c.bottom <= top + g.clientHeight - m && c.left >= left + m
          && c.right <= left + g.clientWidth - m) return;        /* in view: no jump */
      var u = {t: c.top, b: c.bottom, l: c.left, r: c.right};
      var mod = svg.querySelector('ellipse.cur-F, ellipse.cur-B');
      if (mod) {                 /* with its module, if both fit */
        var o = mod.getBoundingClientRect();
        var w = {t: Math.min(u.t, o.top), b: Math.max(u.b, o.bottom),
                 l: Math.min(u.l, o.left), r: Math.max(u.r, o.right)};
        if (w.b - w.t <= g.clientHeight - 2 * m && w.r - w.l <= g.clientWidth - 2 * m) u = w;
      }
      g.scrollTop += (u.t + u.b) / 2 - (top + g.clientHeight / 2);
      g.scrollLeft += (u.l + u.r) / 2 - (left + g.clientWidth / 2);
    }
    function later() { if (!queued) { queued = true; requestAnimationFrame(apply); } }
    new MutationObserver(later).observe(root, {subtree: true, childList: true, attributes: true,
                                               attributeFilter: ['class', 'disabled']});
    function resized() {
      var g = $('.bpv-graph');
      if (g && g.offsetParent !== null) size(g, g.querySelector('svg'));
    }
    if (window.ResizeObserver) new ResizeObserver(function () {
      var w = root.getBoundingClientRect().width;
      if (w !== lastW) { lastW = w; resized(); }
    }).observe(root);
    window.addEventListener('resize', resized);
    apply();
  }
  start();
})(this)"""

BEHAVIOUR = (f"<style>{CSS}</style>"
             f'<img src="data:," alt="" style="display:none" '
             f'onerror="{html.escape(SCRIPT, quote=True)}">')
