import { useCallback, useMemo, useState } from 'react'
import { useQuery, useQueryClient } from '@tanstack/react-query'
import { Api, ApiError } from './lib/api'
import { clearKey, loadKey, saveKey } from './lib/auth'
import { can, SessionContext, useSession } from './lib/context'
import { useLiveEvents } from './lib/live'
import { ApprovalsPanel } from './components/ApprovalsPanel'
import { BudgetsPanel } from './components/BudgetsPanel'
import { SchedulesPanel } from './components/SchedulesPanel'
import { CommandBar } from './components/CommandBar'
import { DeploymentTable } from './components/DeploymentTable'
import { Header } from './components/Header'
import { KPICards } from './components/KPICards'
import { SignIn } from './components/SignIn'
import { keys } from './lib/keys'

export default function App() {
  const [key, setKey] = useState<string | null>(() => loadKey())
  const client = useQueryClient()
  const api = useMemo(() => new Api(() => key), [key])
  const me = useQuery({ queryKey: keys.me(key), queryFn: api.me, enabled: key !== null, retry: (n, e) => !(e instanceof ApiError && e.status < 500) && n < 2 })
  const signOut = useCallback(() => {
    clearKey()
    client.clear()
    setKey(null)
  }, [client])

  if (key === null) return <SignIn onKey={(k) => (saveKey(k), setKey(k))} />
  if (me.isError) {
    const e = me.error as ApiError
    if (e.status === 401 || e.status === 403)
      return (
        <SignIn
          problem={`That key was not accepted: ${e.message}`}
          onKey={(k) => {
            saveKey(k)
            client.clear()
            setKey(k)
          }}
        />
      )
    return (
      <main className="flex min-h-screen items-center justify-center p-6 text-center">
        <div role="alert">
          <p className="text-lg font-semibold">Cannot reach AgentOps</p>
          <p className="mt-1 text-sm text-gray-600 dark:text-gray-400">{e.message}</p>
          <button type="button" onClick={() => void me.refetch()} className="mt-4 rounded-lg bg-blue-600 px-4 py-2 text-sm text-white">
            Try again
          </button>
        </div>
      </main>
    )
  }
  if (!me.data) return <p className="p-6 text-sm text-gray-500">Signing in…</p>
  return (
    <SessionContext.Provider value={{ api, me: me.data, apiKey: key, signOut }}>
      <Dashboard apiKey={key} />
    </SessionContext.Provider>
  )
}

function Dashboard({ apiKey }: { apiKey: string }) {
  const live = useLiveEvents(apiKey)
  const session = useSession()
  const deployer = can(session.me, 'deployer')
  return (
    <div className={deployer ? 'pb-40' : 'pb-10'}>
      <Header live={live} />
      <main className="mx-auto max-w-7xl space-y-6 px-4 py-6">
        <KPICards />
        <ApprovalsPanel live={live} />
        <BudgetsPanel live={live} />
        <SchedulesPanel live={live} />
        <DeploymentTable live={live} />
      </main>
      {deployer && <CommandBar send={session.api.command} />}
    </div>
  )
}
