// The Node twin of sailor/tests/integration/fixtures/component/lib/script.py: does what msg.body says.
function asElasticMessage(payload) {
    // Our Python twin emits {data, id?, headers?, ...}; on the wire both become {id?, body, headers, attachments, metadata}.
    const out = {};
    if (payload.id !== undefined) {
        out.id = payload.id;
    }
    out.body = payload.data;
    out.headers = payload.headers || {};
    out.attachments = payload.attachments || {};
    out.metadata = payload.metadata || {};
    return out;
}

exports.process = async function process(msg) {
    const data = msg.body || {};
    if (data.sleep) {
        await new Promise(resolve => setTimeout(resolve, data.sleep * 1000));
    }
    for (const [kind, payload] of data.emit || []) {
        if (kind === 'data') {
            await this.emit('data', asElasticMessage(payload));
        } else if (kind === 'error') {
            await this.emit('error', Object.assign(new Error(payload.message), { name: payload.name }));
        } else {
            await this.emit(kind, payload);
        }
    }
    if (data.raise) {
        throw new Error(data.raise);
    }
};
