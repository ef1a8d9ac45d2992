import { API_PATHS, type WebSession } from '@trellis/proto';
import type { ReactElement } from 'react';
import { AuditLogPage } from './pages/audit-log';
import { DeviceApprovalPage } from './pages/device-approval';
import { DevicesPage } from './pages/devices';
import { DnsPage } from './pages/dns';
import { PolicyPage } from './pages/policy';
import { RelaysPage } from './pages/relays';
import { RoutesPage } from './pages/routes';
import { SettingsPage } from './pages/settings';
import { SetupKeysPage } from './pages/setup-keys';
import { TopologyPage } from './pages/topology';
import { UsersPage } from './pages/users';

/** What every page is given: the signed-in user's session. */
export interface PageContext {
  session: WebSession;
  admin: boolean;
}

/** One page of the dashboard: where it lives, its button in the bar, who may open it. */
export interface Route {
  path: string;
  label: string;
  adminOnly: boolean;
  render(ctx: PageContext): ReactElement;
}

/**
 * Every page, in the order of the bar. The first is the default: an unknown path, or an admin page
 * asked for by a member, shows it. The broker serves index.html for each of these paths.
 */
export const ROUTES: readonly Route[] = [
  {
    path: '/devices',
    label: 'Devices',
    adminOnly: false,
    render: ({ admin }) => <DevicesPage admin={admin} />,
  },
  { path: '/topology', label: 'Topology', adminOnly: false, render: () => <TopologyPage /> },
  {
    path: API_PATHS.deviceVerification,
    label: 'Add a device',
    adminOnly: false,
    render: () => <DeviceApprovalPage />,
  },
  { path: '/setup-keys', label: 'Setup keys', adminOnly: true, render: () => <SetupKeysPage /> },
  {
    path: '/users',
    label: 'Users',
    adminOnly: true,
    render: ({ session }) => <UsersPage session={session} />,
  },
  {
    path: '/routes',
    label: 'Routes',
    adminOnly: false,
    render: ({ admin }) => <RoutesPage admin={admin} />,
  },
  { path: '/relays', label: 'Relays', adminOnly: true, render: () => <RelaysPage /> },
  {
    path: '/policy',
    label: 'Access policy',
    adminOnly: false,
    render: ({ admin }) => <PolicyPage admin={admin} />,
  },
  { path: '/dns', label: 'DNS', adminOnly: false, render: ({ admin }) => <DnsPage admin={admin} /> },
  { path: '/audit', label: 'Audit log', adminOnly: true, render: () => <AuditLogPage /> },
  { path: '/settings', label: 'Settings', adminOnly: true, render: () => <SettingsPage /> },
];

/** The route a path shows to this user. */
export function routeFor(path: string, admin: boolean): Route {
  const found = ROUTES.find((r) => r.path === path);
  return found && (admin || !found.adminOnly) ? found : ROUTES[0]!;
}
