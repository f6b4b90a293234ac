import { createContext, useContext } from 'react'
import type { Api, Me } from './api'

export interface Session {
  api: Api
  me: Me
  apiKey: string
  signOut: () => void
}

export const SessionContext = createContext<Session | null>(null)

export function useSession(): Session {
  const session = useContext(SessionContext)
  if (!session) throw new Error('useSession outside SessionContext')
  return session
}

export function can(me: Me, role: 'deployer' | 'approver' | 'admin'): boolean {
  return me.roles.includes(role) || me.roles.includes('admin')
}
