import type { WfpCondition, WfpFilter, WfpProvider, WfpSubLayer, WfpValue } from '@trellis/firewall';
import {
  FWP_ACTION,
  FWP_ACTION_MASK_ALL,
  FWP_DATA_TYPE,
  FWP_FILTER_ENUM_OVERLAPPING,
  FWP_MATCH,
  FWPM_FILTER_FLAG,
  FWPM_SESSION_FLAG_DYNAMIC,
  WFP_FIELD_GUIDS,
  WFP_LAYER_GUIDS,
} from './wfp-native';

// The plain data of wfp-filters.ts as the objects koffi encodes into the Fwpm* structs of
// wfp-native.ts. No koffi here: these are data, checked against the declared layouts in the
// layout test and recorded as they are in the engine's golden call log.

/** A GUID struct's fields: the first three groups little-endian numbers, the rest bytes. */
export interface GuidFields {
  Data1: number;
  Data2: number;
  Data3: number;
  Data4: number[];
}

const GUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function guidFields(text: string): GuidFields {
  if (!GUID_TEXT.test(text)) throw new Error(`${text} is not a GUID`);
  const hex = text.replace(/-/g, '');
  return {
    Data1: Number.parseInt(hex.slice(0, 8), 16),
    Data2: Number.parseInt(hex.slice(8, 12), 16),
    Data3: Number.parseInt(hex.slice(12, 16), 16),
    Data4: [...Buffer.from(hex.slice(16), 'hex')],
  };
}

/** The inverse of guidFields; Data4 may come back from koffi as any array-like of bytes. */
export function guidText(g: {
  Data1: number;
  Data2: number;
  Data3: number;
  Data4: ArrayLike<number>;
}): string {
  const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
  const tail = Buffer.from(Array.from(g.Data4)).toString('hex');
  return `${hex(g.Data1, 8)}-${hex(g.Data2, 4)}-${hex(g.Data3, 4)}-${tail.slice(0, 4)}-${tail.slice(4)}`;
}

const ZERO_GUID = guidFields('00000000-0000-0000-0000-000000000000');
const NO_BLOB = { size: 0, data: null };

export type ValueStruct = { type: number; value: Record<string, unknown> };

/** FWP_VALUE0 / FWP_CONDITION_VALUE0: 64-bit integers and ranges go by pointer (a one-item array). */
export function valueStruct(v: WfpValue): ValueStruct {
  switch (v.type) {
    case 'FWP_UINT8':
      return { type: FWP_DATA_TYPE.FWP_UINT8, value: { uint8: v.value } };
    case 'FWP_UINT16':
      return { type: FWP_DATA_TYPE.FWP_UINT16, value: { uint16: v.value } };
    case 'FWP_UINT32':
      return { type: FWP_DATA_TYPE.FWP_UINT32, value: { uint32: v.value >>> 0 } };
    case 'FWP_UINT64':
      return { type: FWP_DATA_TYPE.FWP_UINT64, value: { uint64: [BigInt(v.value)] } };
    case 'FWP_RANGE_TYPE':
      return {
        type: FWP_DATA_TYPE.FWP_RANGE_TYPE,
        value: { rangeValue: { valueLow: valueStruct(v.low), valueHigh: valueStruct(v.high) } },
      };
  }
}

export function conditionStruct(c: WfpCondition) {
  return {
    fieldKey: guidFields(WFP_FIELD_GUIDS[c.field]),
    matchType: FWP_MATCH[c.match],
    conditionValue: valueStruct(c.value),
  };
}

const display = (name: string, description: string | null = null) => ({ name, description });

/** FWPM_SESSION0: dynamic sessions take their objects with them when they close. */
export function sessionStruct(dynamic: boolean) {
  return {
    sessionKey: ZERO_GUID,
    displayData: display('Trellis', 'Trellis agent: inbound access policy'),
    flags: dynamic ? FWPM_SESSION_FLAG_DYNAMIC : 0,
    txnWaitTimeoutInMSec: 0,
    processId: 0,
    sid: null,
    username: null,
    kernelMode: 0,
  };
}

export function providerStruct(p: WfpProvider) {
  return {
    providerKey: guidFields(p.key),
    displayData: display(p.name, p.description),
    flags: 0,
    providerData: NO_BLOB,
    serviceName: null,
  };
}

export function subLayerStruct(s: WfpSubLayer) {
  return {
    subLayerKey: guidFields(s.key),
    displayData: display(s.name),
    flags: 0,
    providerKey: guidFields(s.providerKey),
    providerData: NO_BLOB,
    weight: s.weight,
  };
}

/** FWPM_FILTER0; a filter weight under 16 is FWP_UINT8, a weight range within the sublayer. */
export function filterStruct(f: WfpFilter) {
  if (!Number.isInteger(f.weight) || f.weight < 0 || f.weight > 15) {
    throw new Error(`filter weight ${f.weight} is not in 0..15`);
  }
  return {
    filterKey: guidFields(f.key),
    displayData: display(f.name),
    flags: f.flags.reduce((sum, flag) => sum | FWPM_FILTER_FLAG[flag], 0),
    providerKey: guidFields(f.providerKey),
    providerData: NO_BLOB,
    layerKey: guidFields(WFP_LAYER_GUIDS[f.layer]),
    subLayerKey: guidFields(f.subLayerKey),
    weight: valueStruct({ type: 'FWP_UINT8', value: f.weight }),
    numFilterConditions: f.conditions.length,
    filterCondition: f.conditions.length === 0 ? null : f.conditions.map(conditionStruct),
    action: { type: FWP_ACTION[f.action], filterType: ZERO_GUID },
    context: { rawContext: 0n },
    reserved: null,
    filterId: 0n,
    effectiveWeight: { type: FWP_DATA_TYPE.FWP_EMPTY, value: { uint8: 0 } },
  };
}

/** FWPM_FILTER_ENUM_TEMPLATE0 for every filter in one layer (the caller keeps its sublayer's). */
export function layerEnumTemplate(layerGuid: string) {
  return {
    providerKey: null,
    layerKey: guidFields(layerGuid),
    enumType: FWP_FILTER_ENUM_OVERLAPPING,
    flags: 0,
    providerContextTemplate: null,
    numFilterConditions: 0,
    filterCondition: null,
    actionMask: FWP_ACTION_MASK_ALL,
    calloutKey: null,
  };
}

export type SessionStruct = ReturnType<typeof sessionStruct>;
export type ProviderStruct = ReturnType<typeof providerStruct>;
export type SubLayerStruct = ReturnType<typeof subLayerStruct>;
export type FilterStruct = ReturnType<typeof filterStruct>;
export type EnumTemplateStruct = ReturnType<typeof layerEnumTemplate>;
