// Where the default route leads. One implementation per platform (linux-gateway.ts).

export interface DefaultRoute {
  gateway: string;
  interfaceName: string;
}

export interface GatewayDiscovery {
  defaultRoute(): Promise<DefaultRoute | undefined>;
}
