// The Slide page's deep-zoom viewer (app/inputs/slide_viewer.py): OpenSeadragon over the app's own tile routes.
// The viewer is made once per slide and kept across page reruns; new data only changes its layers, so a rerun
// (a review recorded, a tile opened) never reloads the slide. A click sends the level-0 point; n / p (or the
// buttons) step through the tiles to look at in the page's order, centring each at once, and tell the page.
const LIBRARY = "/dz/static/openseadragon.min.js";
let library = null;

function loadLibrary() {
  if (window.OpenSeadragon) return Promise.resolve();
  if (!library) {
    library = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = LIBRARY;
      s.onload = resolve;
      s.onerror = () => { library = null; reject(new Error("the viewer library did not load")); };
      document.head.appendChild(s);
    });
  }
  return library;
}

function niceLength(um) {  // 1, 2 or 5 × 10^k µm, at most `um`
  const k = Math.pow(10, Math.floor(Math.log10(um)));
  return [5, 2, 1].map((m) => m * k).find((v) => v <= um) || k;
}

function scaleBar(v, st) {
  const slide = st.slide;
  if (!slide || !st.data.mpp) return;
  const screenPerImage = slide.viewportToImageZoom(v.viewport.getZoom(true));
  const um = niceLength((120 / screenPerImage) * st.data.mpp);
  const px = (um / st.data.mpp) * screenPerImage;
  st.bar.style.width = `${px}px`;
  st.bar.textContent = um >= 1000 ? `${um / 1000} mm` : `${um} µm`;
}

function rectOf(st, b, pad) {
  return st.slide.imageToViewportRectangle(b[0] - pad * b[2], b[1] - pad * b[3], (1 + 2 * pad) * b[2],
    (1 + 2 * pad) * b[3]);
}

function centre(st, index) {
  const b = st.data.boxes[index];
  if (!b || !st.slide) return;
  st.viewer.viewport.fitBounds(rectOf(st, b, 2.5));
}

// Boxes are page elements that the viewer moves on every frame of a zoom or pan: only those in and around the
// view are drawn (at most MAX_DRAWN), again once the view settles, so thousands of boxed tiles cost no frames.
const MAX_DRAWN = 300;

function drawBoxes(st) {
  const v = st.viewer;
  v.clearOverlays();
  st.boxEls = [];
  if (!st.showBoxes.checked || !st.slide) return;
  const view = st.slide.viewportToImageRectangle(v.viewport.getBounds(true));
  const mx = view.width / 2, my = view.height / 2;
  let drawn = 0;
  st.data.boxes.forEach((b, i) => {
    const near = b[0] + b[2] > view.x - mx && b[0] < view.x + view.width + mx && b[1] + b[3] > view.y - my &&
      b[1] < view.y + view.height + my;
    if (!near || (drawn >= MAX_DRAWN && i !== st.selected)) return;
    drawn += 1;
    const el = document.createElement("div");
    el.className = `pr-box pr-${b[4]}${i === st.selected ? " pr-sel" : ""}`;
    el.dataset.index = String(i);
    v.addOverlay({ element: el, location: rectOf(st, b, 0) });
    st.boxEls.push(el);
  });
}

function redrawSoon(st) {
  clearTimeout(st.redraw);
  st.redraw = setTimeout(() => drawBoxes(st), 120);
}

// What the bar says: how many tiles there are to look at and how many are flagged, and which one is open.
function statusText(boxes, index, heat) {
  if (!boxes.length) return heat ? "No tile flagged or worth a look" : "Scoring…";
  const head = `${boxes.length} to look at, ${boxes.filter((b) => b[4] === "f").length} flagged`;
  if (index < 0 || index >= boxes.length) return `${head}: n / p to step through them`;
  const what = boxes[index][4] === "f" ? "flagged" : "worth a look";
  return `${head} · tile ${index + 1}, ${what}: n / p for the next / previous`;
}

function select(st, index, tell) {
  const n = st.data.boxes.length;
  if (!n) return;
  st.selected = Math.max(0, Math.min(n - 1, index));
  st.boxEls.forEach((el) => el.classList.toggle("pr-sel", Number(el.dataset.index) === st.selected));
  st.status.textContent = statusText(st.data.boxes, st.selected, st.data.heat);
  centre(st, st.selected);
  if (tell) st.setTrigger("step", { index: st.selected });
}

function addImage(st, url, opacity, done) {
  st.viewer.addTiledImage({ tileSource: { type: "image", url }, x: 0, y: 0, width: 1, opacity,
    success: (e) => done(e.item) });
}

function layers(st) {
  const d = st.data;
  if (!st.slide) return;
  if (st.heatUrl !== d.heat) {
    if (st.heat) st.viewer.world.removeItem(st.heat);
    st.heat = null;
    st.heatUrl = d.heat;
    if (d.heat) addImage(st, d.heat, Number(st.opacity.value), (item) => { st.heat = item; });
  }
  if (st.tissueUrl !== d.tissue) {
    if (st.tissue) st.viewer.world.removeItem(st.tissue);
    st.tissue = null;
    st.tissueUrl = d.tissue;
    if (d.tissue) addImage(st, d.tissue, st.showTissue.checked ? 1 : 0, (item) => { st.tissue = item; });
  }
  const boxesKey = JSON.stringify(d.boxes);
  if (st.boxesKey !== boxesKey) {
    st.boxesKey = boxesKey;
    drawBoxes(st);
  }
  st.opacity.disabled = !d.heat;
  if (d.selected !== st.dataSelected) {  // the page opened another tile (its list, a key, a click)
    st.dataSelected = d.selected;
    if (d.selected >= 0 && d.selected !== st.selected) select(st, d.selected, false);
    else if (d.selected >= 0) {
      st.boxEls.forEach((el) => el.classList.toggle("pr-sel", Number(el.dataset.index) === d.selected));
    }
  }
}

function build(root, st) {
  const d = st.data;
  const host = root.querySelector(".pr-osd");
  host.innerHTML = "";
  st.selected = -1;
  st.boxEls = [];
  st.dataSelected = undefined;
  st.heat = st.tissue = st.slide = null;
  st.heatUrl = st.tissueUrl = st.boxesKey = undefined;
  // The 2D canvas drawer: OpenSeadragon 5 defaults to WebGL, which without a GPU (remote desktops, the test
  // machines) falls back to software rendering and takes seconds per view.
  const v = st.viewer = window.OpenSeadragon({
    element: host, drawer: "canvas", showNavigationControl: false, showNavigator: true, navigatorPosition: "BOTTOM_RIGHT",
    navigatorSizeRatio: 0.18, maxZoomPixelRatio: 2, visibilityRatio: 0.3, animationTime: 0.6,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true }, preserveImageSizeOnResize: true,
    tileSources: { Image: { xmlns: "http://schemas.microsoft.com/deepzoom/2008", Url: `${d.base}/slide_files/`,
      Format: "jpeg", Overlap: String(d.overlap), TileSize: String(d.tileSize),
      Size: { Width: String(d.width), Height: String(d.height) } } },
  });
  st.base = d.base;
  st.firstFull = null;
  v.addHandler("open", () => {
    st.slide = v.world.getItemAt(0);
    // when the first full view is drawn: the benchmark reads it
    st.slide.addHandler("fully-loaded-change", (e) => {
      if (e.fullyLoaded && !st.firstFull) st.firstFull = performance.now();
    });
    layers(st);
    scaleBar(v, st);
  });
  v.addHandler("animation", () => scaleBar(v, st));
  v.addHandler("viewport-change", () => redrawSoon(st));
  v.addHandler("resize", () => scaleBar(v, st));
  v.addHandler("canvas-click", (e) => {
    if (!e.quick || !st.slide) return;
    const p = st.slide.viewerElementToImageCoordinates(e.position);
    if (p.x < 0 || p.y < 0 || p.x >= d.width || p.y >= d.height) return;
    st.setTrigger("clicked", { x: Math.round(p.x), y: Math.round(p.y) });
  });
}

export default function (component) {
  const { parentElement, data, setTriggerValue } = component;
  const root = parentElement.querySelector(".pr-viewer");
  let st = root.prViewer;
  if (!st) {
    st = root.prViewer = {};
    st.opacity = root.querySelector(".pr-opacity");
    st.showTissue = root.querySelector(".pr-tissue");
    st.showBoxes = root.querySelector(".pr-boxes");
    st.status = root.querySelector(".pr-status");
    st.bar = root.querySelector(".pr-scale");
    st.opacity.oninput = () => { if (st.heat) st.heat.setOpacity(Number(st.opacity.value)); };
    st.showTissue.onchange = () => { if (st.tissue) st.tissue.setOpacity(st.showTissue.checked ? 1 : 0); };
    st.showBoxes.onchange = () => drawBoxes(st);
    root.querySelector(".pr-next").onclick = () => select(st, st.selected + 1, true);
    root.querySelector(".pr-prev").onclick = () => select(st, st.selected - 1, true);
    root.addEventListener("keydown", (e) => {
      if (e.key === "n" || e.key === "]") { select(st, st.selected + 1, true); e.preventDefault(); }
      if (e.key === "p" || e.key === "[") { select(st, Math.max(0, st.selected - 1), true); e.preventDefault(); }
    });
  }
  st.data = data;
  st.setTrigger = setTriggerValue;
  st.status.textContent = statusText(data.boxes, data.selected, data.heat);
  loadLibrary().then(() => {
    if (!st.viewer || st.base !== data.base) build(root, st);
    else layers(st);
  }).catch((err) => { st.status.textContent = `The viewer could not start (${err.message}).`; });
}
