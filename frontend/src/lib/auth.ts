// The API key: taken once from the URL that `agentops up` prints (#key=...), then kept in
// localStorage and removed from the address bar so it is not bookmarked or shared by accident.
export const KEY_STORAGE = 'agentops.apiKey'

export function keyFromHash(hash: string): string | null {
  const params = new URLSearchParams(hash.replace(/^#/, ''))
  const key = params.get('key')
  return key && key.trim() ? key.trim() : null
}

export function loadKey(): string | null {
  const fromUrl = keyFromHash(window.location.hash)
  if (fromUrl) {
    localStorage.setItem(KEY_STORAGE, fromUrl)
    history.replaceState(null, '', window.location.pathname + window.location.search)
    return fromUrl
  }
  return localStorage.getItem(KEY_STORAGE)
}

export function saveKey(key: string): void {
  localStorage.setItem(KEY_STORAGE, key.trim())
}

export function clearKey(): void {
  localStorage.removeItem(KEY_STORAGE)
}
