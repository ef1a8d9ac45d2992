import {
  BrokerTrust,
  DnsLabel,
  DnsName,
  MAX_BROKER_URLS,
  OVERLAY_PREFIX,
  OverlayAddress,
  WgKey,
} from '@trellis/proto';
import { z } from 'zod';

/** What enrollment gave us, plus how we trust the broker and whether the user wants the mesh up. */
export const Enrollment = z.object({
  deviceId: z.string().uuid(),
  /** The broker's instances (one database, one static key), tried in this order. */
  brokerUrls: z.array(z.string().url()).min(1).max(MAX_BROKER_URLS),
  brokerPublicKey: WgKey,
  trust: BrokerTrust,
  publicKey: WgKey,
  name: DnsLabel,
  dnsName: DnsName,
  address: OverlayAddress,
  accountName: DnsLabel,
  overlayPrefix: z.literal(OVERLAY_PREFIX),
  enrolledAt: z.string(),
  /** False after `trellis down`: a restarted daemon stays down until `trellis up`. */
  wantUp: z.boolean(),
});
export type Enrollment = z.infer<typeof Enrollment>;

/** The file: agents before several brokers wrote only `brokerUrl`. */
const EnrollmentFile = Enrollment.extend({
  brokerUrls: Enrollment.shape.brokerUrls.optional(),
  brokerUrl: z.string().url().optional(),
});

/** Reads an enrollment file of any version; `migrated` when it had only the old `brokerUrl`. */
export function parseEnrollmentFile(
  json: unknown,
): { ok: true; enrollment: Enrollment; migrated: boolean } | { ok: false; error: string } {
  const parsed = EnrollmentFile.safeParse(json);
  if (!parsed.success) return { ok: false, error: parsed.error.message };
  const { brokerUrl, brokerUrls, ...rest } = parsed.data;
  const urls = brokerUrls ?? (brokerUrl !== undefined ? [brokerUrl] : null);
  if (urls === null) return { ok: false, error: 'neither brokerUrls nor brokerUrl is set' };
  return { ok: true, enrollment: { ...rest, brokerUrls: urls }, migrated: brokerUrls === undefined };
}

/** The file's content: `brokerUrl` (the first URL) is kept so an older trellisd still reads it. */
export function enrollmentFileContent(e: Enrollment): string {
  return `${JSON.stringify({ ...e, brokerUrl: e.brokerUrls[0] }, null, 2)}\n`;
}
