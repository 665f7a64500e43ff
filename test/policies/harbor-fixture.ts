/** A harbor.yml as the compose room renders it, and Harbor chart values as the helm room builds them. */

export const HARBOR_YML = `# rendered by casd-registry
hostname: reg.casd.local
http:
  port: 80
https:
  port: 443
  certificate: /etc/casd/registry/tls/fullchain.pem
  private_key: /etc/casd/registry/tls/server.key
harbor_admin_password: q9Vx2LwZr7TnB4mKa8Hs
database:
  password: c3Pz8RkWn5YtQ1vLm6Jd
  max_idle_conns: 100
  max_open_conns: 900
data_volume: /data
trivy:
  ignore_unfixed: false
  skip_update: true
  skip_java_db_update: true
  offline_scan: true
  insecure: false
jobservice:
  max_job_workers: 10
log:
  level: info
`;

export const CHART_VALUES = {
  expose: {
    type: "nodePort",
    tls: { enabled: true, certSource: "secret", secret: { secretName: "registry-tls" } },
  },
  externalURL: "https://reg.casd.local",
  harborAdminPassword: "q9Vx2LwZr7TnB4mKa8Hs",
  secretKey: "Zk3Qw8Lp2Vn6Rt9Y",
  database: { type: "internal", internal: { password: "c3Pz8RkWn5YtQ1vLm6Jd" } },
  registry: { credentials: { username: "casd_registry", password: "Lk8Nw3Qz5Rv1Tb7M" } },
  trivy: { enabled: true, skipUpdate: true, offlineScan: true },
  core: { image: { repository: "reg.casd.local/goharbor/harbor-core", tag: "v2.15.1" } },
};

export const RELEASE = {
  chart: "./offline/bundle/charts/harbor-1.19.1.tgz",
  version: "1.19.1",
  namespace: "harbor",
  values: CHART_VALUES,
};
