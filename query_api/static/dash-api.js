// The public statistics endpoints, called as any client calls them: the key goes in the
// Authorization header only, never in a URL.

const TIMEOUT_MS = 20000;

export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

export async function getRows(path, key, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  let response;
  try {
    response = await fetch(`/streaming/statistics/${path}?${query}`, {
      headers: { Authorization: `apikey ${key}` }, cache: "no-store", credentials: "omit",
      signal: AbortSignal.timeout(TIMEOUT_MS), // a hung call must not stop the auto-refresh
    });
  } catch (exc) {
    throw new ApiError(0, [`cannot reach the API (${exc.message})`]);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok || !body || !Array.isArray(body.data)) {
    const errors = body && Array.isArray(body.errors) ? body.errors.map(String) : [];
    throw new ApiError(response.status, errors);
  }
  return body.data;
}
