// WCAG 2.2 AA checks a script can prove on a rendered page (axe-core is not available here):
// names of controls and links, text contrast, target size, lang of other-language text,
// table headers, images' names, references between ids. Returns a list of violations.
() => {
  const found = [];
  const say = (rule, el, detail) => {
    const tag = el.tagName ? el.tagName.toLowerCase() : "#text";
    const id = el.id ? "#" + el.id : "";
    const testid = el.getAttribute && el.getAttribute("data-testid");
    const text = (el.textContent || "").trim().slice(0, 40);
    found.push(`${rule}: <${tag}${id}${testid ? ` data-testid=${testid}` : ""}> "${text}" ${detail || ""}`);
  };
  const visible = (el) => {
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") return false;
    const box = el.getBoundingClientRect();
    return box.width > 1 && box.height > 1 && !el.closest("[aria-hidden=true]");
  };
  const parse = (colour) => {
    const m = colour.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const parts = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  };
  const luminance = (c) => {
    const lin = [c.r, c.g, c.b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  };
  const ratio = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const background = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const nameOf = (el) => {
    if (el.getAttribute("aria-label")) return el.getAttribute("aria-label").trim();
    const by = el.getAttribute("aria-labelledby");
    if (by) return by.split(/\s+/).map((id) => (document.getElementById(id) || {}).textContent || "").join(" ").trim();
    if (el.labels && el.labels.length) return Array.from(el.labels).map((l) => l.textContent).join(" ").trim();
    if (el.getAttribute("title")) return el.getAttribute("title").trim();
    return (el.textContent || "").trim();
  };

  // 3.1.1 and 2.4.2: the page's language and title.
  if (!document.documentElement.lang) say("html-lang", document.documentElement);
  if (!document.title.trim()) say("document-title", document.documentElement);
  // 1.3.1 / 4.1.2: every control and link has a name; ids are unique and references resolve.
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const labelled = el.labels && Array.from(el.labels).some((l) => l.textContent.trim());
    if (!labelled && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby") && !el.getAttribute("title")) say("label", el);
  }
  for (const el of document.querySelectorAll("a[href], button, summary")) {
    if (!nameOf(el)) say("name", el);
  }
  const ids = new Map();
  for (const el of document.querySelectorAll("[id]")) ids.set(el.id, (ids.get(el.id) || 0) + 1);
  for (const [id, n] of ids) if (n > 1) say("duplicate-id", document.getElementById(id), `(${n} times)`);
  for (const el of document.querySelectorAll("[aria-describedby], [aria-labelledby]")) {
    const refs = `${el.getAttribute("aria-describedby") || ""} ${el.getAttribute("aria-labelledby") || ""}`;
    for (const id of refs.split(/\s+/).filter(Boolean)) if (!document.getElementById(id)) say("aria-reference", el, id);
  }
  for (const el of document.querySelectorAll("th")) if (!el.textContent.trim()) say("empty-table-header", el);
  for (const el of document.querySelectorAll("svg")) {
    if (el.closest("[aria-hidden=true]") || el.parentElement.closest("svg")) continue;
    if (el.getAttribute("role") !== "img" || !el.getAttribute("aria-label")) say("svg-img-alt", el);
  }
  if (document.querySelectorAll("h1").length !== 1) say("page-has-one-h1", document.body);
  if (!document.querySelector("main")) say("landmark-main", document.body);
  for (const el of document.querySelectorAll("[aria-invalid=true]")) {
    if (!el.getAttribute("aria-describedby")) say("error-not-tied", el);
  }
  // 1.4.3: text contrast against the background behind it.
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const checked = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || checked.has(el) || !visible(el)) continue;
    checked.add(el);
    if (el.closest("button:disabled, svg, option")) continue; // inactive controls are exempt; charts draw their own
    const style = getComputedStyle(el);
    const fg = parse(style.color);
    if (!fg) continue;
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const r = ratio(fg, background(el));
    if (r < (large ? 3 : 4.5)) say("color-contrast", el, `${r.toFixed(2)}:1`);
  }
  // 2.5.8: targets of at least 24 x 24 CSS px, unless spaced so that a 24 px circle around each
  // does not touch another, or inline in a sentence.
  const targets = Array.from(document.querySelectorAll("a[href], button, summary, input:not([type=hidden]), select")).filter(visible);
  const boxes = targets.map((el) => el.getBoundingClientRect());
  targets.forEach((el, i) => {
    const box = boxes[i];
    if (box.width >= 24 && box.height >= 24) return;
    const inline = getComputedStyle(el).display === "inline" && el.parentElement &&
      el.parentElement.textContent.trim().length > el.textContent.trim().length + 1;
    if (inline) return;
    const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
    const crowded = boxes.some((other, j) => {
      if (j === i || targets[j].contains(el) || el.contains(targets[j])) return false;
      const dx = Math.max(other.x - cx, 0, cx - (other.x + other.width));
      const dy = Math.max(other.y - cy, 0, cy - (other.y + other.height));
      return Math.hypot(dx, dy) < 12;
    });
    if (crowded) say("target-size", el, `${box.width.toFixed(0)}x${box.height.toFixed(0)}`);
  });
  // 3.1.2: Chinese text on an English page sits inside an element that says lang="zh...".
  if (!document.documentElement.lang.startsWith("zh")) {
    const cjk = /[\u3400-\u9fff]/;
    const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (texts.nextNode()) {
      const node = texts.currentNode;
      if (!cjk.test(node.textContent) || node.parentElement.closest("svg, option, [aria-hidden=true]")) continue;
      const lang = node.parentElement.closest("[lang]").getAttribute("lang");
      if (!lang.startsWith("zh")) say("language-of-parts", node.parentElement);
    }
  }
  return found;
}
