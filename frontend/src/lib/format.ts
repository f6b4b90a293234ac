import type { PlanStatus } from './api'

export function usd(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—'
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value)
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—'
  const date = new Date(iso)
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}

export function ago(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000))
  if (seconds < 60) return `${seconds}s ago`
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`
  return `${Math.round(seconds / 86400)} d ago`
}

export const STATUS_LABEL: Record<PlanStatus, string> = {
  planning: 'Planning',
  validation_failed: 'Validation failed',
  pending_approval: 'Pending approval',
  rejected: 'Rejected',
  deploying: 'Deploying',
  deployed: 'Deployed',
  updating: 'Updating',
  rolled_back: 'Rolled back',
  failed: 'Failed',
  paused: 'Paused',
  deleted: 'Deleted',
}

/** The seed's colours: green deployed, blue deploying, yellow pending, red failed, grey paused. */
export const STATUS_TONE: Record<PlanStatus, string> = {
  deployed: 'bg-green-100 text-green-800 dark:bg-green-900/40 dark:text-green-300',
  deploying: 'bg-blue-100 text-blue-800 dark:bg-blue-900/40 dark:text-blue-300',
  updating: 'bg-blue-100 text-blue-800 dark:bg-blue-900/40 dark:text-blue-300',
  rolled_back: 'bg-orange-100 text-orange-800 dark:bg-orange-900/40 dark:text-orange-300',
  planning: 'bg-blue-100 text-blue-800 dark:bg-blue-900/40 dark:text-blue-300',
  pending_approval: 'bg-yellow-100 text-yellow-800 dark:bg-yellow-900/40 dark:text-yellow-300',
  failed: 'bg-red-100 text-red-800 dark:bg-red-900/40 dark:text-red-300',
  validation_failed: 'bg-red-100 text-red-800 dark:bg-red-900/40 dark:text-red-300',
  rejected: 'bg-red-100 text-red-800 dark:bg-red-900/40 dark:text-red-300',
  paused: 'bg-gray-200 text-gray-700 dark:bg-gray-700 dark:text-gray-200',
  deleted: 'bg-gray-200 text-gray-500 dark:bg-gray-800 dark:text-gray-400',
}

export const IN_PROGRESS: PlanStatus[] = ['planning', 'deploying', 'updating', 'pending_approval']
