/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// The dev server proxies the API to a running gateway (`agentops up`, default port 8000).
const gateway = process.env.AGENTOPS_GATEWAY ?? 'http://127.0.0.1:8000'
const proxied = ['/api', '/approvals', '/approve', '/readyz', '/healthz', '/docs', '/openapi.json', '/asyncapi']

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: Object.fromEntries(proxied.map((path) => [path, { target: gateway, changeOrigin: false }])),
  },
  build: { outDir: 'dist', sourcemap: false },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test/setup.ts'],
  },
})
