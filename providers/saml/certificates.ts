import crypto from 'node:crypto';
import { generate } from 'selfsigned';
import type { CertificateStatus } from '../types.ts';

/** How long a generated SP certificate is valid. IdPs rarely check it; the status shows it. */
const SP_CERTIFICATE_VALIDITY_DAYS = 3650;

/**
 * Reads a certificate given as PEM or as bare base64 DER (as metadata carries it, whitespace
 * allowed) and returns it as PEM. Throws when it is not an X.509 certificate.
 */
export function toCertificatePem(input: string): string {
  const trimmed = input.trim();
  const base64 = trimmed.startsWith('-----BEGIN CERTIFICATE-----')
    ? trimmed.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
    : trimmed;
  const compact = base64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new Error('not a PEM or base64 certificate');
  const pem = `-----BEGIN CERTIFICATE-----\n${compact.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  new crypto.X509Certificate(pem);
  return pem;
}

/** The validity and fingerprint of a certificate, for a provider's status. */
export function certificateStatus(pem: string, use: string): CertificateStatus {
  const cert = new crypto.X509Certificate(pem);
  return {
    use,
    subject: cert.subject.replace(/\n/g, ', '),
    fingerprint: cert.fingerprint256,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
  };
}

/** True when the PEM private key belongs to the PEM certificate. */
export function keyMatchesCertificate(privateKeyPem: string, certificatePem: string): boolean {
  return new crypto.X509Certificate(certificatePem).checkPrivateKey(crypto.createPrivateKey(privateKeyPem));
}

/** Generates an SP key pair: an RSA 2048 private key (PKCS#8 PEM) and its self-signed certificate. */
export async function generateSpKeyPair(commonName: string): Promise<{ privateKeyPem: string; certificatePem: string }> {
  const notBeforeDate = new Date();
  const notAfterDate = new Date(notBeforeDate.getTime() + SP_CERTIFICATE_VALIDITY_DAYS * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: commonName.slice(0, 64) }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    ],
  });
  return { privateKeyPem: pems.private, certificatePem: pems.cert };
}
