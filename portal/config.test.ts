import { describe, expect, it } from 'vitest';
import { loadPortalConfig } from './config';

const REQUIRED = {
  DATABASE_URL: 'postgres://crossdock:secret@127.0.0.1:5432/crossdock',
  S3_ENDPOINT: 'http://127.0.0.1:9000',
  S3_ACCESS_KEY: 'access',
  S3_SECRET_KEY: 'secret',
};

describe('loadPortalConfig', () => {
  it('fills in the defaults', () => {
    expect(loadPortalConfig(REQUIRED)).toEqual({
      databaseUrl: REQUIRED.DATABASE_URL,
      storage: {
        endpoint: REQUIRED.S3_ENDPOINT,
        accessKey: 'access',
        secretKey: 'secret',
        bucket: 'crossdock',
      },
      host: '127.0.0.1',
      port: 8080,
      portalUrl: 'http://127.0.0.1:8080',
      logLevel: 'info',
      oidc: undefined,
      sessionHours: 168,
      downloads: 'stream',
      storagePublicUrl: REQUIRED.S3_ENDPOINT,
      presignSeconds: 300,
      pageCacheMs: 1000,
    });
  });

  it('reads the sign-in and download settings', () => {
    const config = loadPortalConfig({
      ...REQUIRED,
      PORTAL_OIDC_ISSUER: 'http://127.0.0.1:5556/dex',
      PORTAL_OIDC_CLIENT_ID: 'crossdock',
      PORTAL_OIDC_CLIENT_SECRET: 'shh',
      PORTAL_DOWNLOADS: 'redirect',
      S3_PUBLIC_ENDPOINT: 'https://files.example.com',
      PORTAL_PRESIGN_SECONDS: '60',
    });
    expect(config).toMatchObject({
      oidc: {
        issuer: 'http://127.0.0.1:5556/dex',
        clientId: 'crossdock',
        clientSecret: 'shh',
        scopes: 'openid profile email',
        allowHttp: true,
      },
      downloads: 'redirect',
      storagePublicUrl: 'https://files.example.com',
      presignSeconds: 60,
    });
    expect(
      loadPortalConfig({
        ...REQUIRED,
        PORTAL_OIDC_ISSUER: 'https://sso.example.com',
        PORTAL_OIDC_CLIENT_ID: 'crossdock',
      }).oidc,
    ).toMatchObject({ allowHttp: false, clientSecret: undefined });
  });

  it('redirects downloads by default once the store has a public endpoint', () => {
    const publicStore = { ...REQUIRED, S3_PUBLIC_ENDPOINT: 'https://files.example.com' };
    expect(loadPortalConfig(publicStore).downloads).toBe('redirect');
    expect(loadPortalConfig({ ...publicStore, PORTAL_DOWNLOADS: 'stream' }).downloads).toBe(
      'stream',
    );
    expect(loadPortalConfig({ ...REQUIRED, PORTAL_DOWNLOADS: 'redirect' })).toMatchObject({
      downloads: 'redirect',
      storagePublicUrl: REQUIRED.S3_ENDPOINT,
    });
    expect(() => loadPortalConfig({ ...REQUIRED, PORTAL_DOWNLOADS: 'proxy' })).toThrow(
      /PORTAL_DOWNLOADS/,
    );
  });

  it('refuses half a sign-in configuration and scopes without openid', () => {
    expect(() =>
      loadPortalConfig({ ...REQUIRED, PORTAL_OIDC_ISSUER: 'https://sso.example.com' }),
    ).toThrow(/PORTAL_OIDC_ISSUER and PORTAL_OIDC_CLIENT_ID/);
    expect(() => loadPortalConfig({ ...REQUIRED, PORTAL_OIDC_SCOPES: 'profile' })).toThrow(
      /PORTAL_OIDC_SCOPES/,
    );
  });

  it('reads the portal settings and drops the trailing slash of the public URL', () => {
    const config = loadPortalConfig({
      ...REQUIRED,
      PORTAL_HOST: '0.0.0.0',
      PORTAL_PORT: '9090',
      PORTAL_URL: 'https://builds.example.com/',
    });
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 9090,
      portalUrl: 'https://builds.example.com',
    });
  });

  it('names every bad variable', () => {
    expect(() =>
      loadPortalConfig({
        ...REQUIRED,
        DATABASE_URL: '',
        PORTAL_PORT: '70000',
        PORTAL_URL: 'ftp://x',
      }),
    ).toThrow(/DATABASE_URL[\s\S]*PORTAL_PORT[\s\S]*PORTAL_URL/);
  });
});
