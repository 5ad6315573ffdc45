// State shared by the pages of one browser tab.
import { get } from './api.js';

export const session = {
  whoami: null,
  markets: null,
  marketsAt: 0,
};

// Markets, cached for 10 s (they carry live counts).
export async function loadMarkets({ signal, fresh = false } = {}) {
  if (!fresh && session.markets && Date.now() - session.marketsAt < 10000) return session.markets;
  const list = await get('/markets', { signal });
  session.markets = Array.isArray(list) ? list : [];
  session.marketsAt = Date.now();
  return session.markets;
}

export function marketLabel(markets, idOrSlug) {
  const m = (markets || []).find((x) => x.address === idOrSlug || x.slug === idOrSlug);
  return m ? m : null;
}
