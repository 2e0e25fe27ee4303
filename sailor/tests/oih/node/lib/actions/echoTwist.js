// Returns its input with a twist: an added field, the step field `mode`, a fingerprint of the access token
// (never the token itself) and the snapshot it was given. The Python twin computes the same values.
const crypto = require('crypto');

function fingerprint(token) {
    if (!token) return null;
    return crypto.createHash('sha256').update(String(token), 'utf8').digest('hex').slice(0, 12);
}

exports.process = async function process(msg, cfg, snapshot) {
    return {
        data: Object.assign({}, msg.data, {
            twist: 'twisted',
            mode: cfg.mode || null,
            tokenFingerprint: fingerprint(cfg.accessToken),
            snapshotSeen: snapshot || {}
        }),
        metadata: msg.metadata || {},
        attachments: {}
    };
};
