import { useEffect, useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { Bot, LogOut, Moon, Sun } from 'lucide-react'
import clsx from 'clsx'
import { useSession } from '../lib/context'
import { keys } from '../lib/keys'

function useTheme(): [boolean, () => void] {
  const [dark, setDark] = useState(() => document.documentElement.classList.contains('dark'))
  useEffect(() => {
    document.documentElement.classList.toggle('dark', dark)
  }, [dark])
  const toggle = () => {
    const next = !dark
    localStorage.setItem('theme', next ? 'dark' : 'light')
    setDark(next)
  }
  return [dark, toggle]
}

export function Header({ live }: { live: boolean }) {
  const { api, me, signOut } = useSession()
  const [dark, toggleTheme] = useTheme()
  const ready = useQuery({ queryKey: keys.ready, queryFn: () => api.ready(), refetchInterval: 15_000, retry: false })

  let tone = 'bg-gray-100 text-gray-700 dark:bg-gray-800 dark:text-gray-300'
  let label = 'Checking systems…'
  if (ready.isError) {
    tone = 'bg-red-100 text-red-800 dark:bg-red-900/40 dark:text-red-300'
    label = 'Gateway unreachable'
  } else if (ready.data?.status === 'ready') {
    tone = 'bg-green-100 text-green-800 dark:bg-green-900/40 dark:text-green-300'
    label = 'All systems operational'
  } else if (ready.data) {
    const down = (['broker', 'database'] as const).filter((k) => ready.data[k] !== 'ok')
    tone = 'bg-red-100 text-red-800 dark:bg-red-900/40 dark:text-red-300'
    label = `Degraded: ${down.map((k) => (k === 'broker' ? 'event broker' : 'database')).join(' and ')} unreachable`
  }

  return (
    <header className="sticky top-0 z-30 border-b border-gray-200 bg-white/90 backdrop-blur dark:border-gray-800 dark:bg-gray-900/90">
      <div className="mx-auto flex max-w-7xl flex-wrap items-center justify-between gap-3 px-4 py-3">
        <div className="flex items-center gap-3">
          <div className="flex h-9 w-9 items-center justify-center rounded-lg bg-blue-600 text-white">
            <Bot className="h-5 w-5" aria-hidden />
          </div>
          <div>
            <h1 className="text-lg font-bold leading-tight">AgentOps</h1>
            <p className="text-xs text-gray-500 dark:text-gray-400">Model deployments: planned, guarded, approved, audited</p>
          </div>
        </div>
        <div className="flex flex-wrap items-center gap-2">
          <span role="status" data-testid="system-status" title={ready.data ? `broker: ${ready.data.broker}; database: ${ready.data.database}` : undefined} className={clsx('flex items-center gap-2 rounded-full px-3 py-1 text-xs font-medium', tone)}>
            <span className={clsx('h-2 w-2 rounded-full', ready.data?.status === 'ready' ? 'bg-green-500' : ready.data || ready.isError ? 'bg-red-500' : 'bg-gray-400')} aria-hidden />
            {label}
          </span>
          {ready.data && (
            <span data-testid="executor-mode" className="rounded-full bg-gray-100 px-3 py-1 text-xs font-medium text-gray-700 dark:bg-gray-800 dark:text-gray-300" title="How the executor drives SageMaker">
              {ready.data.executor_mode}
            </span>
          )}
          <span className="rounded-full bg-gray-100 px-3 py-1 text-xs text-gray-600 dark:bg-gray-800 dark:text-gray-400" title={live ? 'Live updates over Server-Sent Events' : 'Polling for updates'}>
            {live ? 'Live' : 'Polling'}
          </span>
          <span data-testid="who" className="text-sm text-gray-700 dark:text-gray-300">
            {me.user_id} <span className="text-gray-400">({me.roles.join(', ')})</span>
          </span>
          <button type="button" onClick={toggleTheme} aria-label={dark ? 'Switch to light theme' : 'Switch to dark theme'} className="rounded-lg p-2 hover:bg-gray-100 dark:hover:bg-gray-800">
            {dark ? <Sun className="h-5 w-5" aria-hidden /> : <Moon className="h-5 w-5" aria-hidden />}
          </button>
          <button type="button" onClick={signOut} aria-label="Sign out" className="rounded-lg p-2 hover:bg-gray-100 dark:hover:bg-gray-800">
            <LogOut className="h-5 w-5" aria-hidden />
          </button>
        </div>
      </div>
    </header>
  )
}
