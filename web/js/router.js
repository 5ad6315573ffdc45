// History API routing. Pages are render(main, params, ctx) functions; ctx.signal aborts when the
// page is left (streams, timers).

let handler = null;

export function setRouteHandler(fn) {
  handler = fn;
}

export function navigate(path, { replace = false } = {}) {
  const cur = location.pathname + location.search + location.hash;
  if (path === cur && !replace) {
    if (handler) handler();
    return;
  }
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  if (handler) handler();
}

// Changes the query string without re-rendering the page (tab state).
export function setQuery(params) {
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') u.searchParams.delete(k);
    else u.searchParams.set(k, v);
  }
  history.replaceState(null, '', u.pathname + u.search + u.hash);
}

export function match(routes, pathname) {
  const segs = pathname.replace(/\/+$/, '').split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  for (const r of routes) {
    const pat = r.path.split('/').filter(Boolean);
    if (pat.length !== segs.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < pat.length; i++) {
      if (pat[i].startsWith(':')) params[pat[i].slice(1)] = segs[i];
      else if (pat[i] !== segs[i]) {
        ok = false;
        break;
      }
    }
    if (ok) return { route: r, params };
  }
  return null;
}

// Same-origin <a href="/..."> clicks become History navigations.
if (typeof document !== 'undefined') {
  document.addEventListener('click', (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const a = ev.target.closest && ev.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download') || a.dataset.external !== undefined) return;
    const href = a.getAttribute('href');
    if (!href || !href.startsWith('/') || href.startsWith('//') || href.startsWith('/api/') || href.startsWith('/e/') || href.startsWith('/assets/')) return;
    ev.preventDefault();
    navigate(href);
  });
}
