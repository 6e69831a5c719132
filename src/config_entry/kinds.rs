//! The fields of each config entry kind we model (Consul 1.2x CE), as
//! decoding schemas. Enterprise-only keys (`Namespace`, `Partition`) are
//! left out on purpose, so they are refused as Consul CE refuses them.

use super::schema::{Ty::*, F};

const META: F = F("Meta", StrMap);

pub const MESH_GATEWAY: &[F] = &[F("Mode", Str)];
pub const TRANSPARENT_PROXY: &[F] = &[F("OutboundListenerPort", Int), F("DialedDirectly", Bool)];
const EXPOSE_PATH: &[F] =
    &[F("ListenerPort", Int), F("Path", Str), F("LocalPathPort", Int), F("Protocol", Str)];
pub const EXPOSE: &[F] = &[F("Checks", Bool), F("Paths", List(EXPOSE_PATH))];
const LIMITS: &[F] =
    &[F("MaxConnections", Int), F("MaxPendingRequests", Int), F("MaxConcurrentRequests", Int)];
const PASSIVE_HEALTH_CHECK: &[F] = &[
    F("Interval", Dur),
    F("MaxFailures", Int),
    F("EnforcingConsecutive5xx", Int),
    F("MaxEjectionPercent", Int),
    F("BaseEjectionTime", Dur),
];
const UPSTREAM: &[F] = &[
    F("Name", Str),
    F("Peer", Str),
    F("EnvoyListenerJSON", Str),
    F("EnvoyClusterJSON", Str),
    F("Protocol", Str),
    F("ConnectTimeoutMs", Int),
    F("Limits", Obj(LIMITS)),
    F("PassiveHealthCheck", Obj(PASSIVE_HEALTH_CHECK)),
    F("MeshGateway", Obj(MESH_GATEWAY)),
    F("BalanceOutboundConnections", Str),
];
const UPSTREAM_CONFIG: &[F] = &[F("Overrides", List(UPSTREAM)), F("Defaults", Obj(UPSTREAM))];
const DESTINATION: &[F] = &[F("Addresses", Strs), F("Port", Int)];
const ENVOY_EXTENSION: &[F] = &[
    F("Name", Str),
    F("Required", Bool),
    F("Arguments", Any),
    F("ConsulVersion", Str),
    F("EnvoyVersion", Str),
];
const RATE_LIMIT_ROUTE: &[F] = &[
    F("PathExact", Str),
    F("PathPrefix", Str),
    F("PathRegex", Str),
    F("RequestsPerSecond", Float),
    F("RequestsMaxBurst", Int),
];
const INSTANCE_LEVEL: &[F] =
    &[F("RequestsPerSecond", Float), F("RequestsMaxBurst", Int), F("Routes", List(RATE_LIMIT_ROUTE))];
const RATE_LIMITS: &[F] = &[F("InstanceLevel", Obj(INSTANCE_LEVEL))];

pub const SERVICE_DEFAULTS: &[F] = &[
    F("Protocol", Str),
    F("Mode", Str),
    F("TransparentProxy", Obj(TRANSPARENT_PROXY)),
    F("MutualTLSMode", Str),
    F("MeshGateway", Obj(MESH_GATEWAY)),
    F("Expose", Obj(EXPOSE)),
    F("ExternalSNI", Str),
    F("UpstreamConfig", Obj(UPSTREAM_CONFIG)),
    F("Destination", Obj(DESTINATION)),
    F("MaxInboundConnections", Int),
    F("LocalConnectTimeoutMs", Int),
    F("LocalRequestTimeoutMs", Int),
    F("BalanceInboundConnections", Str),
    F("RateLimits", Obj(RATE_LIMITS)),
    F("EnvoyExtensions", List(ENVOY_EXTENSION)),
    META,
];

const ACCESS_LOGS: &[F] = &[
    F("Enabled", Bool),
    F("DisableListenerLogs", Bool),
    F("Type", Str),
    F("Path", Str),
    F("JSONFormat", Str),
    F("TextFormat", Str),
];
const FAILOVER_POLICY: &[F] = &[F("Mode", Str), F("Regions", Strs)];
const PRIORITIZE_BY_LOCALITY: &[F] = &[F("Mode", Str)];

pub const PROXY_DEFAULTS: &[F] = &[
    F("Config", Any),
    F("Mode", Str),
    F("TransparentProxy", Obj(TRANSPARENT_PROXY)),
    F("MutualTLSMode", Str),
    F("MeshGateway", Obj(MESH_GATEWAY)),
    F("Expose", Obj(EXPOSE)),
    F("AccessLogs", Obj(ACCESS_LOGS)),
    F("FailoverPolicy", Obj(FAILOVER_POLICY)),
    F("PrioritizeByLocality", Obj(PRIORITIZE_BY_LOCALITY)),
    F("EnvoyExtensions", List(ENVOY_EXTENSION)),
    META,
];

const HEADER_MATCH: &[F] = &[
    F("Name", Str),
    F("Present", Bool),
    F("Exact", Str),
    F("Prefix", Str),
    F("Suffix", Str),
    F("Regex", Str),
    F("Invert", Bool),
];
const QUERY_MATCH: &[F] = &[F("Name", Str), F("Present", Bool), F("Exact", Str), F("Regex", Str)];
const HTTP_MATCH: &[F] = &[
    F("PathExact", Str),
    F("PathPrefix", Str),
    F("PathRegex", Str),
    F("Header", List(HEADER_MATCH)),
    F("QueryParam", List(QUERY_MATCH)),
    F("Methods", Strs),
];
const ROUTE_MATCH: &[F] = &[F("HTTP", Obj(HTTP_MATCH))];
const HEADER_MODIFIERS: &[F] = &[F("Add", StrMap), F("Set", StrMap), F("Remove", Strs)];
const ROUTE_DESTINATION: &[F] = &[
    F("Service", Str),
    F("ServiceSubset", Str),
    F("PrefixRewrite", Str),
    F("RequestTimeout", Dur),
    F("IdleTimeout", Dur),
    F("NumRetries", Int),
    F("RetryOnConnectFailure", Bool),
    F("RetryOn", Strs),
    F("RetryOnStatusCodes", Ints),
    F("RequestHeaders", Obj(HEADER_MODIFIERS)),
    F("ResponseHeaders", Obj(HEADER_MODIFIERS)),
];
const ROUTE: &[F] = &[F("Match", Obj(ROUTE_MATCH)), F("Destination", Obj(ROUTE_DESTINATION))];
pub const SERVICE_ROUTER: &[F] = &[F("Routes", List(ROUTE)), META];

const SPLIT: &[F] = &[
    F("Weight", Float),
    F("Service", Str),
    F("ServiceSubset", Str),
    F("RequestHeaders", Obj(HEADER_MODIFIERS)),
    F("ResponseHeaders", Obj(HEADER_MODIFIERS)),
];
pub const SERVICE_SPLITTER: &[F] = &[F("Splits", List(SPLIT)), META];

const SUBSET: &[F] = &[F("Filter", Str), F("OnlyPassing", Bool)];
const REDIRECT: &[F] = &[
    F("Service", Str),
    F("ServiceSubset", Str),
    F("Datacenter", Str),
    F("Peer", Str),
    F("SamenessGroup", Str),
];
const FAILOVER_TARGET: &[F] =
    &[F("Service", Str), F("ServiceSubset", Str), F("Datacenter", Str), F("Peer", Str)];
const FAILOVER: &[F] = &[
    F("Service", Str),
    F("ServiceSubset", Str),
    F("Datacenters", Strs),
    F("Targets", List(FAILOVER_TARGET)),
    F("Policy", Obj(FAILOVER_POLICY)),
    F("SamenessGroup", Str),
];
const COOKIE_CONFIG: &[F] = &[F("Session", Bool), F("TTL", Dur), F("Path", Str)];
const HASH_POLICY: &[F] = &[
    F("Field", Str),
    F("FieldValue", Str),
    F("CookieConfig", Obj(COOKIE_CONFIG)),
    F("SourceIP", Bool),
    F("Terminal", Bool),
];
const LOAD_BALANCER: &[F] = &[
    F("Policy", Str),
    F("RingHashConfig", Obj(&[F("MinimumRingSize", Int), F("MaximumRingSize", Int)])),
    F("LeastRequestConfig", Obj(&[F("ChoiceCount", Int)])),
    F("HashPolicies", List(HASH_POLICY)),
];
pub const SERVICE_RESOLVER: &[F] = &[
    F("DefaultSubset", Str),
    F("Subsets", ObjMap(SUBSET)),
    F("Redirect", Obj(REDIRECT)),
    F("Failover", ObjMap(FAILOVER)),
    F("ConnectTimeout", Dur),
    F("RequestTimeout", Dur),
    F("LoadBalancer", Obj(LOAD_BALANCER)),
    F("PrioritizeByLocality", Obj(PRIORITIZE_BY_LOCALITY)),
    META,
];

const SDS: &[F] = &[F("ClusterName", Str), F("CertResource", Str)];
const GATEWAY_TLS: &[F] = &[
    F("Enabled", Bool),
    F("TLSMinVersion", Str),
    F("TLSMaxVersion", Str),
    F("CipherSuites", Strs),
    F("SDS", Obj(SDS)),
];
const SERVICE_TLS: &[F] = &[F("SDS", Obj(SDS))];
const INGRESS_SERVICE: &[F] = &[
    F("Name", Str),
    F("Hosts", Strs),
    F("TLS", Obj(SERVICE_TLS)),
    F("RequestHeaders", Obj(HEADER_MODIFIERS)),
    F("ResponseHeaders", Obj(HEADER_MODIFIERS)),
    F("MaxConnections", Int),
    F("MaxPendingRequests", Int),
    F("MaxConcurrentRequests", Int),
    F("PassiveHealthCheck", Obj(PASSIVE_HEALTH_CHECK)),
];
const LISTENER: &[F] =
    &[F("Port", Int), F("Protocol", Str), F("Services", List(INGRESS_SERVICE)), F("TLS", Obj(GATEWAY_TLS))];
const INGRESS_DEFAULTS: &[F] = &[
    F("MaxConnections", Int),
    F("MaxPendingRequests", Int),
    F("MaxConcurrentRequests", Int),
    F("PassiveHealthCheck", Obj(PASSIVE_HEALTH_CHECK)),
];
pub const INGRESS_GATEWAY: &[F] =
    &[F("TLS", Obj(GATEWAY_TLS)), F("Defaults", Obj(INGRESS_DEFAULTS)), F("Listeners", List(LISTENER)), META];

const LINKED_SERVICE: &[F] = &[
    F("Name", Str),
    F("CAFile", Str),
    F("CertFile", Str),
    F("KeyFile", Str),
    F("SNI", Str),
    F("DisableAutoHostRewrite", Bool),
];
pub const TERMINATING_GATEWAY: &[F] = &[F("Services", List(LINKED_SERVICE)), META];

const PERMISSION_HTTP: &[F] = &[
    F("PathExact", Str),
    F("PathPrefix", Str),
    F("PathRegex", Str),
    F("Header", List(HEADER_MATCH)),
    F("Methods", Strs),
];
const PERMISSION: &[F] = &[F("Action", Str), F("HTTP", Obj(PERMISSION_HTTP)), F("JWT", Any)];
const SOURCE: &[F] = &[
    F("Name", Str),
    F("Peer", Str),
    F("SamenessGroup", Str),
    F("Action", Str),
    F("Permissions", List(PERMISSION)),
    F("Precedence", Int),
    F("Type", Str),
    F("Description", Str),
    F("LegacyID", Str),
    F("LegacyMeta", StrMap),
    F("LegacyCreateTime", Str),
    F("LegacyUpdateTime", Str),
];
pub const SERVICE_INTENTIONS: &[F] = &[F("Sources", List(SOURCE)), F("JWT", Any), META];

const TLS_DIRECTION: &[F] = &[F("TLSMinVersion", Str), F("TLSMaxVersion", Str), F("CipherSuites", Strs)];
const REQUEST_NORMALIZATION: &[F] = &[
    F("InsecureDisablePathNormalization", Bool),
    F("MergeSlashes", Bool),
    F("PathWithEscapedSlashesAction", Str),
    F("HeadersWithUnderscoresAction", Str),
];
pub const MESH: &[F] = &[
    F("TransparentProxy", Obj(&[F("MeshDestinationsOnly", Bool)])),
    F("AllowEnablingPermissiveMutualTLS", Bool),
    F("ValidateClusters", Bool),
    F("TLS", Obj(&[F("Incoming", Obj(TLS_DIRECTION)), F("Outgoing", Obj(TLS_DIRECTION))])),
    F(
        "HTTP",
        Obj(&[
            F("SanitizeXForwardedClientCert", Bool),
            F("Incoming", Obj(&[F("RequestNormalization", Obj(REQUEST_NORMALIZATION))])),
        ]),
    ),
    F("Peering", Obj(&[F("PeerThroughMeshGateways", Bool)])),
    META,
];

const CONSUMER: &[F] = &[F("Peer", Str), F("SamenessGroup", Str)];
const EXPORTED_SERVICE: &[F] = &[F("Name", Str), F("Consumers", List(CONSUMER))];
pub const EXPORTED_SERVICES: &[F] = &[F("Services", List(EXPORTED_SERVICE)), META];
