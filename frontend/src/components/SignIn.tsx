import { useState } from 'react'
import { Bot, KeyRound } from 'lucide-react'

/** Shown when the browser holds no key (or the gateway refused it). */
export function SignIn({ onKey, problem }: { onKey: (key: string) => void; problem?: string | null }) {
  const [key, setKey] = useState('')
  return (
    <main className="flex min-h-screen items-center justify-center p-4">
      <form
        onSubmit={(e) => {
          e.preventDefault()
          if (key.trim()) onKey(key.trim())
        }}
        className="w-full max-w-md rounded-xl border border-gray-200 bg-white p-6 shadow-sm dark:border-gray-800 dark:bg-gray-900"
        aria-labelledby="signin-title"
      >
        <div className="mb-4 flex items-center gap-3">
          <div className="flex h-9 w-9 items-center justify-center rounded-lg bg-blue-600 text-white">
            <Bot className="h-5 w-5" aria-hidden />
          </div>
          <h1 id="signin-title" className="text-lg font-bold">Sign in to AgentOps</h1>
        </div>
        <p className="text-sm text-gray-600 dark:text-gray-400">
          Paste your API key. <code className="rounded bg-gray-100 px-1 dark:bg-gray-800">agentops up</code> prints a dashboard link that signs you in as the
          local admin; an admin makes keys with <code className="rounded bg-gray-100 px-1 dark:bg-gray-800">agentops keys create</code>.
        </p>
        {problem && (
          <p role="alert" className="mt-3 rounded-lg border border-red-200 bg-red-50 p-3 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200">
            {problem}
          </p>
        )}
        <label htmlFor="api-key" className="mt-4 block text-sm font-medium">
          API key
        </label>
        <div className="mt-1 flex items-center gap-2 rounded-lg border border-gray-300 px-3 py-2 focus-within:ring-2 focus-within:ring-blue-300 dark:border-gray-600">
          <KeyRound className="h-4 w-4 text-gray-400" aria-hidden />
          <input id="api-key" type="password" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} placeholder="aok_…" className="flex-1 bg-transparent text-sm outline-none focus-visible:ring-0 focus-visible:ring-offset-0" />
        </div>
        <button type="submit" disabled={!key.trim()} className="mt-4 w-full rounded-lg bg-blue-600 py-2 text-sm font-medium text-white hover:bg-blue-700 disabled:bg-gray-300 dark:disabled:bg-gray-700">
          Sign in
        </button>
      </form>
    </main>
  )
}
