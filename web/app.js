// Infera dashboard: shell, routing and sign-in. Plain ES modules, no build step.
import { get, setKey, clearKey, isSignedIn, onUnauthorized, ApiError } from './js/api.js';
import { h, replace, clear, errMsg, toast, icon } from './js/ui.js';
import { navigate, setRouteHandler, match } from './js/router.js';
import { session } from './js/session.js';
import { renderDeploy } from './js/deploy.js';
import { renderDeployments } from './js/deployments.js';
import { renderDeployment } from './js/deployment.js';
import { renderJob } from './js/job.js';
import { renderMarkets, renderNodes, renderAccount } from './js/pages.js';

const routes = [
  { path: '/', redirect: '/deployments' },
  { path: '/signin', public: true, render: renderSignin, title: 'Sign in' },
  { path: '/deploy', render: renderDeploy, nav: 'deploy', title: 'Deploy' },
  { path: '/deploy/:template', render: renderDeploy, nav: 'deploy', title: 'Deploy' },
  { path: '/deployments/create', render: renderDeploy, nav: 'deploy', title: 'Deploy' },
  { path: '/deployments', render: renderDeployments, nav: 'deployments', title: 'Deployments' },
  { path: '/deployments/:id', render: renderDeployment, nav: 'deployments', title: 'Deployment' },
  { path: '/deployments/:id/jobs/:job', render: renderJob, nav: 'deployments', title: 'Job' },
  { path: '/markets', render: renderMarkets, nav: 'markets', title: 'Markets' },
  { path: '/nodes', render: renderNodes, nav: 'nodes', title: 'Nodes' },
  { path: '/account', render: renderAccount, nav: 'account', title: 'Account' },
];

const NAV = [
  { id: 'deploy', label: 'Deploy', href: '/deployments/create' },
  { id: 'deployments', label: 'Deployments', href: '/deployments' },
  { id: 'markets', label: 'Markets', href: '/markets' },
  { id: 'nodes', label: 'Nodes', href: '/nodes' },
  { id: 'account', label: 'Account', href: '/account' },
];

const app = document.getElementById('app');
let shell = null; // {root, main, links, nav, toggle, who}
let pageCtl = null;
let firstRender = true;

function buildShell() {
  const links = new Map();
  const navList = h('ul', { class: 'nav-list' },
    NAV.map((n) => {
      const a = h('a', { href: n.href, class: 'nav-link', testid: `nav-${n.id}` },
        h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, icon(n.id)), h('span', null, n.label));
      links.set(n.id, a);
      return h('li', null, a);
    }));
  const who = h('div', { class: 'whoami', testid: 'whoami' });
  const signout = h('button', { type: 'button', class: 'btn btn-ghost btn-small signout', testid: 'signout' }, 'Sign out');
  signout.addEventListener('click', () => {
    clearKey();
    session.whoami = null;
    toast('Signed out.');
    navigate('/signin', { replace: true });
  });
  const nav = h('nav', { class: 'sidebar', id: 'sidebar', 'aria-label': 'Main' },
    h('a', { href: '/deployments', class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'i'), h('span', null, 'Infera')),
    navList,
    h('div', { class: 'sidebar-foot' }, who, signout));
  const toggle = h('button', { type: 'button', class: 'icon-btn nav-toggle', testid: 'nav-toggle', 'aria-controls': 'sidebar', 'aria-expanded': 'false', 'aria-label': 'Menu' }, '☰');
  const topbar = h('header', { class: 'topbar' },
    h('a', { href: '/deployments', class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'i'), h('span', null, 'Infera')),
    toggle);
  const main = h('main', { id: 'main', class: 'main', tabindex: '-1' });
  const root = h('div', { class: 'shell' }, topbar, nav, main);
  toggle.addEventListener('click', () => setNavOpen(!root.classList.contains('nav-open')));
  nav.addEventListener('click', (ev) => {
    if (ev.target.closest('a')) setNavOpen(false);
  });
  root.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && root.classList.contains('nav-open')) {
      setNavOpen(false);
      toggle.focus();
    }
  });
  function setNavOpen(open) {
    root.classList.toggle('nav-open', open);
    toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
  }
  return { root, main, links, who };
}

function renderWho() {
  if (!shell) return;
  const w = session.whoami;
  replace(shell.who, w ? [
    h('span', { class: 'muted small' }, 'Account'),
    h('code', { class: 'who-id', title: w.account }, w.account ? `${w.account.slice(0, 10)}…` : '—'),
    w.admin ? h('span', { class: 'badge badge-outline' }, 'admin') : null,
  ] : []);
}

async function loadWhoami() {
  if (session.whoami) return;
  try {
    session.whoami = await get('/whoami');
    renderWho();
  } catch {
    /* the page itself reports errors */
  }
}

async function route() {
  const url = new URL(location.href);
  const m = match(routes, url.pathname);
  if (pageCtl) pageCtl.abort();
  pageCtl = new AbortController();
  const signal = pageCtl.signal;
  if (m && m.route.redirect) {
    navigate(m.route.redirect, { replace: true });
    return;
  }
  const publicRoute = m && m.route.public;
  if (!publicRoute && !isSignedIn()) {
    const next = url.pathname + url.search;
    navigate(`/signin${next && next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`, { replace: true });
    return;
  }
  if (publicRoute) {
    shell = null;
    clear(app);
    document.title = 'Sign in · Infera';
    m.route.render(app, m.params, { signal, query: url.searchParams });
    firstRender = false;
    return;
  }
  if (!shell || !app.contains(shell.root)) {
    shell = buildShell();
    replace(app, shell.root);
    renderWho();
  }
  loadWhoami();
  for (const [id, a] of shell.links) {
    if (m && m.route.nav === id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clear(shell.main);
  document.title = `${m ? m.route.title : 'Not found'} · Infera`;
  if (!m) {
    shell.main.appendChild(h('div', { class: 'empty-state', testid: 'not-found' },
      h('h1', { class: 'page-title' }, 'Page not found'),
      h('p', null, 'There is nothing at this address.'),
      h('a', { href: '/deployments', class: 'btn btn-primary' }, 'Go to Deployments')));
  } else {
    // Each page renders into its own container: a slow page that finishes after the user moved on
    // writes into a detached element, never into the next page.
    const view = h('div', { class: 'view' });
    shell.main.appendChild(view);
    try {
      await m.route.render(view, m.params, { signal, query: url.searchParams });
    } catch (e) {
      if (!(e && e.name === 'AbortError')) {
        console.error(e);
        view.appendChild(h('div', { class: 'banner banner-error', role: 'alert' }, errMsg(e)));
      }
    }
    if (signal.aborted) return;
  }
  if (!firstRender) {
    const title = shell.main.querySelector('h1');
    (title || shell.main).focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
  firstRender = false;
}

// --- sign in ---

function safeNext(next) {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/signin')) return '/deployments';
  return next;
}

function renderSignin(root, _params, { query }) {
  const next = safeNext(query.get('next'));
  if (isSignedIn()) {
    navigate(next, { replace: true });
    return;
  }
  const err = h('p', { class: 'form-error', role: 'alert', testid: 'signin-error', hidden: true });
  const input = h('input', { id: 'signin-key', type: 'password', testid: 'signin-key', autocomplete: 'off', spellcheck: 'false', placeholder: 'inf_…', required: true, 'aria-describedby': 'signin-help' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', testid: 'signin-submit' }, 'Sign in');
  const noAuth = h('div', { class: 'noauth', hidden: true });
  const form = h('form', { class: 'signin-form', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'signin-key' }, 'API key'),
      input,
      h('p', { id: 'signin-help', class: 'help' }, 'Paste an API key (inf_…). The admin key is printed when ', h('code', null, 'infera platform'), ' first starts. The key is kept for this browser tab only.')),
    err,
    submit,
    noAuth);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    err.hidden = true;
    if (!key) {
      err.hidden = false;
      err.textContent = 'Paste an API key.';
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      const who = await get('/whoami', { key, noAuthRedirect: true });
      setKey(key);
      session.whoami = who;
      navigate(next, { replace: true });
    } catch (e) {
      err.hidden = false;
      err.textContent = e instanceof ApiError && e.status === 401 ? 'That key was refused.' : errMsg(e);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      input.select();
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  const reason = sessionStorage.getItem('infera.signinReason');
  if (reason) {
    sessionStorage.removeItem('infera.signinReason');
    err.hidden = false;
    err.textContent = reason;
  }
  root.appendChild(h('div', { class: 'signin-page' },
    h('main', { id: 'main', class: 'signin-card', 'aria-labelledby': 'signin-title' },
      h('div', { class: 'brand brand-large' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'i'), h('span', null, 'Infera')),
      h('h1', { id: 'signin-title', class: 'signin-title' }, 'Sign in'),
      h('p', { class: 'muted' }, 'Deploy OpenAI-compatible model servers on your own machines.'),
      form)));
  input.focus();
  // A platform started with --auth none answers without a key.
  get('/whoami', { key: '', noAuthRedirect: true }).then((who) => {
    noAuth.hidden = false;
    replace(noAuth,
      h('p', { class: 'muted small' }, 'This platform runs without authentication.'),
      h('button', { type: 'button', class: 'btn btn-block', testid: 'signin-noauth', onclick: () => {
        setKey('', true);
        session.whoami = who;
        navigate(next, { replace: true });
      } }, 'Continue without a key'));
  }).catch(() => {});
}

onUnauthorized(() => {
  if (!isSignedIn()) return;
  clearKey();
  session.whoami = null;
  sessionStorage.setItem('infera.signinReason', 'Your key was refused (revoked or expired). Sign in again.');
  const next = location.pathname + location.search;
  navigate(`/signin?next=${encodeURIComponent(next)}`, { replace: true });
});

setRouteHandler(route);
window.addEventListener('popstate', route);
route();
