/**
 * The Harbor chart's values, built by one pure, typed function from the
 * stack's config. Every key used here is a documented key of the pinned
 * chart (checked by `checkValuesKeys` against its values.yaml at plan time
 * and in tests). Secrets are referenced by Secret name (`existingSecret*`)
 * and also set inline where the chart has a published default, so that no
 * default survives and every render of the same config is byte-identical.
 */
import type {
  ExternalDatabase,
  ExternalRedis,
  HarborConfig,
  HelmConfig,
  S3Storage,
} from "../../config";
import { REGISTRY_USERNAME } from "./secrets";

/** The Helm release name; also the prefix of every object the chart creates. */
export const RELEASE_NAME = "harbor";

/** Names of the Secrets this room creates in the namespace (metadata.name). */
export const SECRET_NAMES = {
  /** kubernetes.io/tls: full chain and key of the registry's server certificate. */
  tls: `${RELEASE_NAME}-casd-tls`,
  /** `ca.crt`: the registry's CA (caSecretName, caBundleSecretName). */
  ca: `${RELEASE_NAME}-casd-ca`,
  /** HARBOR_ADMIN_PASSWORD. */
  admin: `${RELEASE_NAME}-casd-admin`,
  /** secretKey, secret, CSRF_KEY, JOBSERVICE_SECRET, REGISTRY_HTTP_SECRET, REGISTRY_PASSWD, REGISTRY_HTPASSWD. */
  internal: `${RELEASE_NAME}-casd-internal`,
  /** kubernetes.io/tls: core's token signing certificate and key. */
  token: `${RELEASE_NAME}-casd-token`,
  /** `password` of the external database. */
  database: `${RELEASE_NAME}-casd-database`,
  /** REDIS_PASSWORD of the external Redis. */
  redis: `${RELEASE_NAME}-casd-redis`,
  /** REGISTRY_STORAGE_S3_ACCESSKEY and REGISTRY_STORAGE_S3_SECRETKEY. */
  s3: `${RELEASE_NAME}-casd-s3`,
  /** `ca.crt` of a private S3 endpoint. */
  s3Ca: `${RELEASE_NAME}-casd-s3-ca`,
} as const;

/** Harbor's images: values path of each `image` block and the image's name under `goharbor/`. */
export const HARBOR_IMAGES = [
  { path: ["nginx"], image: "nginx-photon" },
  { path: ["portal"], image: "harbor-portal" },
  { path: ["core"], image: "harbor-core" },
  { path: ["jobservice"], image: "harbor-jobservice" },
  { path: ["registry", "registry"], image: "registry-photon" },
  { path: ["registry", "controller"], image: "harbor-registryctl" },
  { path: ["trivy"], image: "trivy-adapter-photon" },
  { path: ["database", "internal"], image: "harbor-db" },
  { path: ["redis", "internal"], image: "redis-photon" },
  { path: ["exporter"], image: "harbor-exporter" },
] as const;

/** The secret values that the chart also reads inline (set so no default survives). */
export interface InlineSecrets {
  adminPassword: string;
  databasePassword: string;
  secretKey: string;
  coreSecret: string;
  xsrfKey: string;
  jobserviceSecret: string;
  registryHttpSecret: string;
  registryPassword: string;
  registryHtpasswd: string;
}

/** Placeholders of the right shape, for checking the values' structure before the secrets are known. */
export const PLACEHOLDER_SECRETS: InlineSecrets = {
  adminPassword: "placeholder",
  databasePassword: "placeholder",
  secretKey: "placeholder-0016",
  coreSecret: "placeholder-0016",
  xsrfKey: "placeholder-placeholder-000000032",
  jobserviceSecret: "placeholder-0016",
  registryHttpSecret: "placeholder-0016",
  registryPassword: "placeholder",
  registryHtpasswd: `${REGISTRY_USERNAME}:placeholder`,
};

export interface HelmValuesInput {
  /** The registry's DNS name (externalURL, ingress host). */
  hostname: string;
  helm: Pick<
    HelmConfig,
    | "expose"
    | "ingressClass"
    | "storageClass"
    | "imageTag"
    | "imagePullSecrets"
    | "replicas"
    | "httpsNodePort"
    | "volumeSizes"
  > & {
    /** host[:port] of the mirror registry holding Harbor's images. */
    mirrorRegistry: string;
  };
  harbor: Pick<HarborConfig, "withTrivy" | "logLevel" | "jobserviceWorkers" | "metrics"> & {
    externalDatabase?: ExternalDatabase;
    externalRedis?: ExternalRedis;
    s3?: S3Storage;
    /** An external Redis password is configured (its Secret exists). */
    redisPassword: boolean;
  };
}

interface ImageValues {
  image: { repository: string; tag: string };
}

/** The subset of the chart's values this stack sets (chart 1.19.1 key names). */
export interface HarborChartValues {
  expose: {
    type: "ingress" | "nodePort" | "loadBalancer";
    tls: { enabled: true; certSource: "secret"; secret: { secretName: string } };
    ingress?: { hosts: { core: string }; className: string };
    nodePort?: { ports: { https: { nodePort: number } } };
  };
  externalURL: string;
  persistence: {
    enabled: true;
    resourcePolicy: "keep";
    persistentVolumeClaim: Record<
      "registry" | "database" | "redis" | "trivy",
      { storageClass?: string; size: string }
    > & {
      jobservice: { jobLog: { storageClass?: string; size: string } };
    };
    imageChartStorage: {
      type: "filesystem" | "s3";
      disableredirect?: boolean;
      caBundleSecretName?: string;
      s3?: {
        region: string;
        bucket: string;
        regionendpoint?: string;
        existingSecret?: string;
        secure: boolean;
        v4auth: boolean;
      };
    };
  };
  existingSecretAdminPassword: string;
  existingSecretAdminPasswordKey: "HARBOR_ADMIN_PASSWORD";
  harborAdminPassword: string;
  existingSecretSecretKey: string;
  secretKey: string;
  caSecretName: string;
  caBundleSecretName: string;
  imagePullPolicy: "IfNotPresent";
  imagePullSecrets?: { name: string }[];
  updateStrategy: { type: "Recreate" | "RollingUpdate" };
  logLevel: string;
  metrics: { enabled: boolean };
  nginx: ImageValues;
  portal: ImageValues & { replicas: number };
  core: ImageValues & {
    replicas: number;
    secret: string;
    existingSecret: string;
    secretName: string;
    xsrfKey: string;
    existingXsrfSecret: string;
    existingXsrfSecretKey: "CSRF_KEY";
  };
  jobservice: ImageValues & {
    replicas: number;
    maxJobWorkers: number;
    jobLoggers: ("file" | "database")[];
    secret: string;
    existingSecret: string;
    existingSecretKey: "JOBSERVICE_SECRET";
  };
  registry: {
    registry: ImageValues;
    controller: ImageValues;
    replicas: number;
    secret: string;
    existingSecret: string;
    existingSecretKey: "REGISTRY_HTTP_SECRET";
    credentials: {
      username: string;
      password: string;
      existingSecret: string;
      htpasswdString: string;
    };
  };
  trivy: ImageValues & {
    enabled: boolean;
    replicas: number;
    skipUpdate: true;
    skipJavaDBUpdate: true;
    offlineScan: true;
  };
  database: {
    type: "internal" | "external";
    internal: ImageValues & { password: string };
    external?: {
      host: string;
      port: string;
      username: string;
      password: string;
      coreDatabase: string;
      existingSecret: string;
      sslmode: string;
    };
  };
  redis: {
    type: "internal" | "external";
    internal: ImageValues;
    external?: {
      addr: string;
      coreDatabaseIndex: string;
      jobserviceDatabaseIndex: string;
      registryDatabaseIndex: string;
      trivyAdapterIndex: string;
      existingSecret?: string;
    };
  };
  exporter: ImageValues;
}

/** Problems of the scale-out settings, each naming the config key, its value and the fix. Pure. */
export function scaleOutProblems(
  input: HelmValuesInput,
): { propertyPath: string; reason: string }[] {
  const problems: { propertyPath: string; reason: string }[] = [];
  const { replicas } = input.helm;
  if (!input.harbor.s3) {
    if (replicas.registry > 1) {
      problems.push({
        propertyPath: "helm.replicas.registry",
        reason: `is ${replicas.registry}, but more than one registry needs shared image storage (its filesystem volume is ReadWriteOnce). Fix: configure harbor.s3, or set helm.replicas.registry to 1`,
      });
    }
    if (replicas.jobservice > 1) {
      problems.push({
        propertyPath: "helm.replicas.jobservice",
        reason: `is ${replicas.jobservice}, but more than one jobservice needs the database job logger, which this stack selects with harbor.s3 (scale-out mode). Fix: configure harbor.s3, or set helm.replicas.jobservice to 1`,
      });
    }
  }
  return problems;
}

function image(mirror: string, name: string, tag: string): ImageValues {
  return { image: { repository: `${mirror}/goharbor/${name}`, tag } };
}

function pvc(
  size: string,
  storageClass: string | undefined,
): { storageClass?: string; size: string } {
  return storageClass ? { storageClass, size } : { size };
}

/** The externalURL clients use: https://<hostname>, with the node port when exposed by nodePort. */
export function externalUrl(
  hostname: string,
  expose: HelmConfig["expose"],
  httpsNodePort: number,
): string {
  return expose === "nodePort" ? `https://${hostname}:${httpsNodePort}` : `https://${hostname}`;
}

/** Builds the chart values. Pure: the same input gives the same values. */
export function buildHarborValues(
  input: HelmValuesInput,
  secrets: InlineSecrets,
): HarborChartValues {
  const { hostname, helm, harbor } = input;
  const mirror = helm.mirrorRegistry;
  const tag = helm.imageTag;
  const img = (name: string): ImageValues => image(mirror, name, tag);
  const sc = helm.storageClass;
  const sizes = helm.volumeSizes;
  // Scale-out mode: shared image storage, no ReadWriteOnce volume behind the stateless parts.
  const shared = harbor.s3 !== undefined;

  const expose: HarborChartValues["expose"] = {
    type: helm.expose,
    tls: { enabled: true, certSource: "secret", secret: { secretName: SECRET_NAMES.tls } },
  };
  if (helm.expose === "ingress")
    expose.ingress = { hosts: { core: hostname }, className: helm.ingressClass };
  if (helm.expose === "nodePort")
    expose.nodePort = { ports: { https: { nodePort: helm.httpsNodePort } } };

  const imageChartStorage: HarborChartValues["persistence"]["imageChartStorage"] = harbor.s3
    ? {
        type: "s3",
        disableredirect: true,
        ...(harbor.s3.caBundlePem ? { caBundleSecretName: SECRET_NAMES.s3Ca } : {}),
        s3: {
          region: harbor.s3.region,
          bucket: harbor.s3.bucket,
          ...(harbor.s3.regionEndpoint ? { regionendpoint: harbor.s3.regionEndpoint } : {}),
          ...(harbor.s3.accessKey ? { existingSecret: SECRET_NAMES.s3 } : {}),
          secure: true,
          v4auth: true,
        },
      }
    : { type: "filesystem" };

  const db = harbor.externalDatabase;
  const redis = harbor.externalRedis;
  const values: HarborChartValues = {
    expose,
    externalURL: externalUrl(hostname, helm.expose, helm.httpsNodePort),
    persistence: {
      enabled: true,
      resourcePolicy: "keep",
      persistentVolumeClaim: {
        registry: pvc(sizes.registry, sc),
        jobservice: { jobLog: pvc(sizes.jobservice, sc) },
        database: pvc(sizes.database, sc),
        redis: pvc(sizes.redis, sc),
        trivy: pvc(sizes.trivy, sc),
      },
      imageChartStorage,
    },
    existingSecretAdminPassword: SECRET_NAMES.admin,
    existingSecretAdminPasswordKey: "HARBOR_ADMIN_PASSWORD",
    harborAdminPassword: secrets.adminPassword,
    existingSecretSecretKey: SECRET_NAMES.internal,
    secretKey: secrets.secretKey,
    caSecretName: SECRET_NAMES.ca,
    caBundleSecretName: SECRET_NAMES.ca,
    imagePullPolicy: "IfNotPresent",
    ...(helm.imagePullSecrets.length > 0
      ? { imagePullSecrets: helm.imagePullSecrets.map((name) => ({ name })) }
      : {}),
    updateStrategy: { type: shared ? "RollingUpdate" : "Recreate" },
    logLevel: harbor.logLevel,
    metrics: { enabled: harbor.metrics.enabled },
    nginx: img("nginx-photon"),
    portal: { ...img("harbor-portal"), replicas: helm.replicas.portal },
    core: {
      ...img("harbor-core"),
      replicas: helm.replicas.core,
      secret: secrets.coreSecret,
      existingSecret: SECRET_NAMES.internal,
      secretName: SECRET_NAMES.token,
      xsrfKey: secrets.xsrfKey,
      existingXsrfSecret: SECRET_NAMES.internal,
      existingXsrfSecretKey: "CSRF_KEY",
    },
    jobservice: {
      ...img("harbor-jobservice"),
      replicas: helm.replicas.jobservice,
      maxJobWorkers: harbor.jobserviceWorkers,
      jobLoggers: [shared ? "database" : "file"],
      secret: secrets.jobserviceSecret,
      existingSecret: SECRET_NAMES.internal,
      existingSecretKey: "JOBSERVICE_SECRET",
    },
    registry: {
      registry: img("registry-photon"),
      controller: img("harbor-registryctl"),
      replicas: helm.replicas.registry,
      secret: secrets.registryHttpSecret,
      existingSecret: SECRET_NAMES.internal,
      existingSecretKey: "REGISTRY_HTTP_SECRET",
      credentials: {
        username: REGISTRY_USERNAME,
        password: secrets.registryPassword,
        existingSecret: SECRET_NAMES.internal,
        htpasswdString: secrets.registryHtpasswd,
      },
    },
    trivy: {
      ...img("trivy-adapter-photon"),
      enabled: harbor.withTrivy,
      replicas: helm.replicas.trivy,
      skipUpdate: true,
      skipJavaDBUpdate: true,
      offlineScan: true,
    },
    database: {
      type: db ? "external" : "internal",
      internal: { ...img("harbor-db"), password: secrets.databasePassword },
      ...(db
        ? {
            external: {
              host: db.host,
              port: String(db.port),
              username: db.username,
              password: secrets.databasePassword,
              coreDatabase: db.coreDatabase,
              existingSecret: SECRET_NAMES.database,
              sslmode: db.sslmode,
            },
          }
        : {}),
    },
    redis: {
      type: redis ? "external" : "internal",
      internal: img("redis-photon"),
      ...(redis
        ? {
            external: {
              addr: `${redis.host}:${redis.port}`,
              coreDatabaseIndex: "0",
              jobserviceDatabaseIndex: String(redis.jobserviceDbIndex),
              registryDatabaseIndex: String(redis.registryDbIndex),
              trivyAdapterIndex: String(redis.trivyDbIndex),
              ...(harbor.redisPassword ? { existingSecret: SECRET_NAMES.redis } : {}),
            },
          }
        : {}),
    },
    exporter: img("harbor-exporter"),
  };
  return values;
}
