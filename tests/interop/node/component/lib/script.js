// The Node twin of tests/sailor/integration/fixtures/component/lib/script.py: does what msg.body says.
exports.process = async function process(msg) {
    const data = msg.body || {};
    if (data.sleep) {
        await new Promise(resolve => setTimeout(resolve, data.sleep * 1000));
    }
    for (const [kind, payload] of data.emit || []) {
        // Our Python twin gets messages as {data, ...}; the Node sailor emits them as {body, ...}.
        const out = kind === 'data' && payload && 'data' in payload
            ? Object.assign({}, payload, { body: payload.data, data: undefined })
            : payload;
        await this.emit(kind, kind === 'error' ? Object.assign(new Error(payload.message), { name: payload.name }) : out);
    }
    if (data.raise) {
        throw new Error(data.raise);
    }
};
