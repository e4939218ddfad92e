// One walk through every tool of the `all` profile: each is called once on its happy path, building the ids the next
// step needs (iTwin -> iModel -> mapping -> group -> properties -> extraction -> aggregation -> report -> OData ->
// Grouping & Mapping -> Reporting v2 -> API keys), and once with a bad argument or an unknown id. Deletes come last.

const UNKNOWN = '00000000-0000-4000-8000-000000000000';
const NOT_FOUND = 'NotFound';
const INVALID = 'Invalid arguments';
const MATERIAL = [{ ecSchemaName: '*', ecClassName: '*', ecPropertyName: 'Material', ecPropertyType: 'String' }];

function inDays(days) {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
}

async function waitDone(r, jobId) {
  for (let i = 0; i < 20; i += 1) {
    const status = await r.ok('wait_for_extraction', { jobId, waitSeconds: 10 });
    if (status.done) return status;
  }
  throw new Error(`extraction ${jobId} did not finish`);
}

async function context(r) {
  await r.ok('auth_status');
  await r.bad('auth_status', { bogus: 1 }, INVALID);
  await r.ok('read_skill', { skill: 'insights-reporting' });
  await r.bad('read_skill', { skill: 'insights-nothing' }, 'insights-reporting');
  const itwin = (await r.ok('list_itwins')).iTwins[0];
  await r.bad('list_itwins', { top: 0 }, INVALID);
  await r.ok('get_itwin', { iTwinId: itwin.id });
  await r.bad('get_itwin', { iTwinId: UNKNOWN }, NOT_FOUND);
  const imodels = (await r.ok('list_imodels', { iTwinId: itwin.id })).iModels;
  await r.bad('list_imodels', { iTwinId: UNKNOWN }, NOT_FOUND);
  const building = imodels.find((m) => m.displayName === 'Sample Office Building');
  const site = imodels.find((m) => m.id !== building.id);
  await r.ok('get_imodel', { iModelId: building.id });
  await r.bad('get_imodel', { iModelId: UNKNOWN }, NOT_FOUND);
  const changesets = (await r.ok('list_changesets', { iModelId: building.id })).changesets;
  await r.bad('list_changesets', { iModelId: UNKNOWN }, NOT_FOUND);
  const changesetId = changesets[changesets.length - 1].id;
  return { itwinId: itwin.id, imodelId: building.id, siteId: site.id, changesetId };
}

async function imodelQuery(r, ids) {
  const at = { iTwinId: ids.itwinId, iModelId: ids.imodelId, changesetId: ids.changesetId };
  await r.ok('describe_imodel', { iModelId: ids.imodelId, className: 'bldg.Wall' });
  await r.bad('describe_imodel', { iModelId: UNKNOWN }, NOT_FOUND);
  await r.ok('query_imodel', { iModelId: ids.imodelId, query: 'SELECT COUNT(*) n FROM bldg.Wall' });
  await r.bad('query_imodel', { iModelId: ids.imodelId, query: 'DELETE FROM bldg.Wall' }, 'InvalidECSqlQuery');
  // More than one page of rows: the API answers 201 with a query id to poll.
  const queued = await r.ok('run_imodel_query', { ...at, query: 'SELECT ECInstanceId FROM bis.Element' });
  await r.bad('run_imodel_query', { ...at, query: 'SELEC x' }, 'InvalidECSqlQuery');
  await r.ok('get_imodel_query', { ...at, queryId: queued.id });
  await r.bad('get_imodel_query', { ...at, queryId: UNKNOWN }, NOT_FOUND);
}

async function mappingAndGroup(r, ids) {
  const { imodelId } = ids;
  const mappingId = (await r.ok('create_mapping', { imodelId, mappingName: 'HostCheck' })).mapping.id;
  await r.bad('create_mapping', { imodelId, mappingName: 'bad name' }, INVALID);
  const mid = { imodelId, mappingId };
  await r.ok('list_mappings', { imodelId });
  await r.bad('list_mappings', { imodelId: UNKNOWN }, NOT_FOUND);
  await r.ok('get_mapping', mid);
  await r.bad('get_mapping', { imodelId, mappingId: UNKNOWN }, NOT_FOUND);
  await r.ok('update_mapping', { ...mid, description: 'host check' });
  await r.bad('update_mapping', { imodelId, mappingId: UNKNOWN, description: 'x' }, NOT_FOUND);
  const query = 'SELECT * FROM Building.Wall';
  const groupId = (await r.ok('create_group', { ...mid, groupName: 'Walls', query })).group.id;
  await r.bad('create_group', { imodelId, mappingId: UNKNOWN, groupName: 'Walls', query }, NOT_FOUND);
  const gid = { ...mid, groupId };
  await r.ok('list_groups', mid);
  await r.bad('list_groups', { imodelId, mappingId: UNKNOWN }, NOT_FOUND);
  await r.ok('get_group', gid);
  await r.bad('get_group', { ...mid, groupId: UNKNOWN }, NOT_FOUND);
  await r.ok('update_group', { ...gid, description: 'walls' });
  await r.bad('update_group', { ...mid, groupId: UNKNOWN, description: 'x' }, NOT_FOUND);
  await r.ok('copy_mapping', { ...mid, targetIModelId: ids.siteId, mappingName: 'HostCopy' });
  await r.bad('copy_mapping', mid, INVALID);
  return { ...ids, mappingId, groupId };
}

async function properties(r, ids) {
  const gid = { imodelId: ids.imodelId, mappingId: ids.mappingId, groupId: ids.groupId };
  const gone = { ...gid, groupId: UNKNOWN };
  const material = { propertyName: 'Material', dataType: 'String', ecProperties: MATERIAL };
  const propertyId = (await r.ok('create_group_property', { ...gid, ...material })).property.id;
  await r.bad('create_group_property', { ...gone, ...material }, NOT_FOUND);
  await r.ok('list_group_properties', gid);
  await r.bad('list_group_properties', gone, NOT_FOUND);
  await r.ok('get_group_property', { ...gid, propertyId });
  await r.bad('get_group_property', { ...gid, propertyId: UNKNOWN }, NOT_FOUND);
  await r.ok('update_group_property', { ...gid, propertyId, ...material, quantityType: 'Undefined' });
  await r.bad('update_group_property', { ...gid, propertyId: UNKNOWN, ...material }, NOT_FOUND);

  const volume = (await r.ok('create_calculated_property', { ...gid, propertyName: 'Volume', type: 'Volume' }))
    .property.id;
  await r.bad('create_calculated_property', { ...gid, propertyName: 'Area', type: 'Weight' }, INVALID);
  await r.ok('list_calculated_properties', gid);
  await r.bad('list_calculated_properties', gone, NOT_FOUND);
  await r.ok('get_calculated_property', { ...gid, propertyId: volume });
  await r.bad('get_calculated_property', { ...gid, propertyId: UNKNOWN }, NOT_FOUND);
  await r.ok('update_calculated_property', { ...gid, propertyId: volume, type: 'Volume' });
  await r.bad('update_calculated_property', { ...gid, propertyId: UNKNOWN, type: 'Volume' }, NOT_FOUND);

  const cost = { propertyName: 'Cost', formula: 'Volume * 150', quantityType: 'Monetary' };
  const calcId = (await r.ok('create_custom_calculation', { ...gid, ...cost })).customCalculation.id;
  await r.bad('create_custom_calculation', { ...gone, ...cost }, NOT_FOUND);
  await r.ok('list_custom_calculations', gid);
  await r.bad('list_custom_calculations', gone, NOT_FOUND);
  await r.ok('get_custom_calculation', { ...gid, customCalculationId: calcId });
  await r.bad('get_custom_calculation', { ...gid, customCalculationId: UNKNOWN }, NOT_FOUND);
  await r.ok('update_custom_calculation', { ...gid, customCalculationId: calcId, formula: 'Volume * 200' });
  await r.bad('update_custom_calculation', { ...gid, customCalculationId: UNKNOWN, formula: '1' }, NOT_FOUND);
  return { ...ids, propertyId, volume, calcId };
}

async function extraction(r, ids) {
  const jobId = (await r.ok('run_extraction', { imodelId: ids.imodelId })).run.id;
  await r.bad('run_extraction', { imodelId: UNKNOWN }, NOT_FOUND);
  await waitDone(r, jobId);
  await r.bad('wait_for_extraction', { jobId: 'nope' }, NOT_FOUND);
  await r.ok('get_extraction_status', { jobId });
  await r.bad('get_extraction_status', { jobId: UNKNOWN }, NOT_FOUND);
  await r.ok('list_extraction_logs', { jobId });
  await r.bad('list_extraction_logs', { jobId: UNKNOWN }, NOT_FOUND);
  await r.ok('list_extraction_history', { imodelId: ids.imodelId });
  await r.bad('list_extraction_history', { imodelId: UNKNOWN }, NOT_FOUND);
}

async function aggregations(r, ids) {
  const source = { datasourceId: ids.mappingId, datasourceType: 'IModelMapping' };
  const setId = (await r.ok('create_aggregation_table_set', { tableSetName: 'Totals', ...source }))
    .aggregationTableSet.id;
  await r.bad('create_aggregation_table_set', { tableSetName: 'Totals', ...source, datasourceType: 'Nope' }, INVALID);
  const sid = { aggregationTableSetId: setId };
  const goneSet = { aggregationTableSetId: UNKNOWN };
  await r.ok('list_aggregation_table_sets', source);
  await r.bad('list_aggregation_table_sets', { datasourceId: ids.mappingId }, INVALID);
  await r.ok('get_aggregation_table_set', sid);
  await r.bad('get_aggregation_table_set', goneSet, NOT_FOUND);
  await r.ok('update_aggregation_table_set', { ...sid, description: 'sums' });
  await r.bad('update_aggregation_table_set', { ...goneSet, description: 'x' }, NOT_FOUND);

  const table = { tableName: 'WallsByMaterial', sourceTableName: 'Walls' };
  const tableId = (await r.ok('create_aggregation_table', { ...sid, ...table })).aggregationTable.id;
  await r.bad('create_aggregation_table', { ...goneSet, ...table }, NOT_FOUND);
  const tid = { ...sid, aggregationTableId: tableId };
  const goneTable = { ...sid, aggregationTableId: UNKNOWN };
  await r.ok('list_aggregation_tables', sid);
  await r.bad('list_aggregation_tables', goneSet, NOT_FOUND);
  await r.ok('get_aggregation_table', tid);
  await r.bad('get_aggregation_table', goneTable, NOT_FOUND);
  await r.ok('update_aggregation_table', { ...tid, description: 'walls' });
  await r.bad('update_aggregation_table', { ...goneTable, description: 'x' }, NOT_FOUND);

  const groupBy = { propertyName: 'Material', sourcePropertyName: 'Material', type: 'GroupBy' };
  const propId = (await r.ok('create_aggregation_property', { ...tid, ...groupBy })).aggregationProperty.id;
  await r.bad('create_aggregation_property', { ...goneTable, ...groupBy }, NOT_FOUND);
  await r.ok('create_aggregation_property', { ...tid, propertyName: 'Cost', sourcePropertyName: 'Cost', type: 'Sum' });
  const pid = { ...tid, aggregationPropertyId: propId };
  const goneProp = { ...tid, aggregationPropertyId: UNKNOWN };
  await r.ok('list_aggregation_properties', tid);
  await r.bad('list_aggregation_properties', goneTable, NOT_FOUND);
  await r.ok('get_aggregation_property', pid);
  await r.bad('get_aggregation_property', goneProp, NOT_FOUND);
  await r.ok('update_aggregation_property', { ...pid, type: 'GroupBy' });
  await r.bad('update_aggregation_property', { ...goneProp, type: 'Sum' }, NOT_FOUND);
  return { ...ids, setId, tableId, propId };
}

async function odata(r, reportId, prefix, exportIt) {
  const service = await r.ok(`${prefix}get_odata_service`, { reportId });
  await r.bad(`${prefix}get_odata_service`, { reportId: UNKNOWN }, NOT_FOUND);
  await r.ok(`${prefix}get_odata_metadata`, { reportId });
  await r.bad(`${prefix}get_odata_metadata`, { reportId: UNKNOWN }, NOT_FOUND);
  const [region, manifestId, entityType] = service.value[0].url.split('/');
  const page = { reportId, region, manifestId, entityType };
  await r.ok(`${prefix}get_odata_entity_page`, page);
  await r.bad(`${prefix}get_odata_entity_page`, { ...page, entityType: 'Nope' }, NOT_FOUND);
  if (!exportIt) return;
  await r.ok('export_odata_entity', { ...page, fileName: 'host-check.csv' });
  await r.bad('export_odata_entity', { ...page, fileName: '../escape.csv' }, INVALID);
  await r.ok('manage_exports');
  await r.ok('manage_exports', { delete: 'host-check.csv' });
  await r.bad('manage_exports', { delete: 'host-check.csv' }, 'No export file');
}

async function reports(r, ids) {
  const created = await r.ok('create_report', { projectId: ids.itwinId, displayName: 'Host check' });
  const reportId = created.report.id;
  await r.bad('create_report', { displayName: 'No project' }, INVALID);
  await r.ok('list_reports', { projectId: ids.itwinId });
  await r.bad('list_reports', { projectId: ids.itwinId, top: 0 }, INVALID);
  await r.ok('get_report', { reportId });
  await r.bad('get_report', { reportId: UNKNOWN }, NOT_FOUND);
  await r.ok('update_report', { reportId, description: 'quantities' });
  await r.bad('update_report', { reportId: UNKNOWN, description: 'x' }, NOT_FOUND);
  const link = { reportId, mappingId: ids.mappingId, imodelId: ids.imodelId };
  await r.ok('create_report_mapping', link);
  await r.bad('create_report_mapping', { ...link, reportId: UNKNOWN }, NOT_FOUND);
  await r.ok('list_report_mappings', { reportId });
  await r.bad('list_report_mappings', { reportId: UNKNOWN }, NOT_FOUND);
  const agg = { reportId, aggregationTableSetId: ids.setId };
  await r.ok('create_report_aggregation', agg);
  await r.bad('create_report_aggregation', { ...agg, reportId: UNKNOWN }, NOT_FOUND);
  await r.ok('list_report_aggregations', { reportId });
  await r.bad('list_report_aggregations', { reportId: UNKNOWN }, NOT_FOUND);
  await r.ok('get_report_aggregation', agg);
  await r.bad('get_report_aggregation', { ...agg, aggregationTableSetId: UNKNOWN }, NOT_FOUND);
  await odata(r, reportId, '', true);
  return { ...ids, reportId };
}

async function groupingMapping(r, ids) {
  const iModelId = ids.imodelId;
  const mappingId = (await r.ok('gm_create_mapping', { iModelId, mappingName: 'GM' })).mapping.id;
  await r.bad('gm_create_mapping', { iModelId, mappingName: 'bad name' }, INVALID);
  const mid = { mappingId };
  await r.ok('gm_list_mappings', { iModelId });
  await r.bad('gm_list_mappings', { iModelId: UNKNOWN }, NOT_FOUND);
  await r.ok('gm_get_mapping', mid);
  await r.bad('gm_get_mapping', { mappingId: UNKNOWN }, NOT_FOUND);
  await r.ok('gm_update_mapping', { ...mid, description: 'shared' });
  await r.bad('gm_update_mapping', { mappingId: UNKNOWN, description: 'x' }, NOT_FOUND);
  const slabs = { groupName: 'Slabs', query: 'SELECT * FROM Building.Slab' };
  const groupId = (await r.ok('gm_create_group', { ...mid, ...slabs })).group.id;
  await r.bad('gm_create_group', { mappingId: UNKNOWN, ...slabs }, NOT_FOUND);
  const gid = { ...mid, groupId };
  await r.ok('gm_list_groups', mid);
  await r.bad('gm_list_groups', { mappingId: UNKNOWN }, NOT_FOUND);
  await r.ok('gm_get_group', gid);
  await r.bad('gm_get_group', { ...mid, groupId: UNKNOWN }, NOT_FOUND);
  await r.ok('gm_update_group', { ...gid, description: 'slabs' });
  await r.bad('gm_update_group', { ...mid, groupId: UNKNOWN, description: 'x' }, NOT_FOUND);
  const length = { propertyName: 'Len', dataType: 'Double', calculatedPropertyType: 'Length' };
  await r.ok('gm_create_property', { ...gid, ...length });
  await r.bad('gm_create_property', { ...gid, propertyName: 'C', dataType: 'Number' }, INVALID);
  const notes = { propertyName: 'Notes', dataType: 'String' };
  const propertyId = (await r.ok('gm_create_property', { ...gid, ...notes })).property.id;
  const pid = { ...gid, propertyId };
  await r.ok('gm_list_properties', gid);
  await r.bad('gm_list_properties', { ...mid, groupId: UNKNOWN }, NOT_FOUND);
  await r.ok('gm_get_property', pid);
  await r.bad('gm_get_property', { ...gid, propertyId: UNKNOWN }, NOT_FOUND);
  const label = [{ ecSchemaName: '*', ecClassName: '*', ecPropertyName: 'UserLabel' }];
  await r.ok('gm_update_property', { ...pid, ...notes, ecProperties: label });
  await r.bad('gm_update_property', { ...gid, propertyId: UNKNOWN, ...notes }, NOT_FOUND);

  const extractionId = (await r.ok('gm_run_extraction', { iModelId, mappings: [{ id: mappingId }] })).extraction.id;
  await r.bad('gm_run_extraction', { iModelId, mappings: [{ id: UNKNOWN }] }, NOT_FOUND);
  await waitDone(r, extractionId);
  await r.ok('gm_get_extraction_status', { extractionId });
  await r.bad('gm_get_extraction_status', { extractionId: UNKNOWN }, NOT_FOUND);
  await r.ok('gm_list_extraction_logs', { extractionId });
  await r.bad('gm_list_extraction_logs', { extractionId: UNKNOWN }, NOT_FOUND);
  await r.ok('gm_list_imodel_extractions', { iModelId });
  await r.bad('gm_list_imodel_extractions', { iModelId: UNKNOWN }, NOT_FOUND);
  await r.ok('gm_list_mapping_extractions', mid);
  await r.bad('gm_list_mapping_extractions', { mappingId: UNKNOWN }, NOT_FOUND);
  const cdm = await r.ok('gm_get_cdm', { ...mid, extractionId });
  await r.bad('gm_get_cdm', { ...mid, extractionId: UNKNOWN }, NOT_FOUND);
  const location = cdm.entities[0].partitions[0].location;
  await r.ok('gm_get_cdm_partition', { ...mid, extractionId, location });
  await r.bad('gm_get_cdm_partition', { ...mid, extractionId, location: 'Nothing/part00000.csv' }, NOT_FOUND);
  await r.ok('gm_list_audit_trail', { iModelId, path: `mappings/${mappingId}` });
  await r.bad('gm_list_audit_trail', { iModelId: UNKNOWN }, NOT_FOUND);
  return { ...ids, gmMappingId: mappingId, gmGroupId: groupId, gmPropertyId: propertyId };
}

async function reportingV2(r, ids) {
  const iTwinId = ids.itwinId;
  const reportId = (await r.ok('v2_create_report', { iTwinId, displayName: 'V2 host check' })).report.id;
  await r.bad('v2_create_report', { displayName: 'No iTwin' }, INVALID);
  await r.ok('v2_list_reports', { iTwinId });
  await r.bad('v2_list_reports', {}, INVALID);
  await r.ok('v2_get_report', { reportId });
  await r.bad('v2_get_report', { reportId: UNKNOWN }, NOT_FOUND);
  await r.ok('v2_update_report', { reportId, description: 'v2' });
  await r.bad('v2_update_report', { reportId: UNKNOWN, description: 'x' }, NOT_FOUND);
  const link = { reportId, mappingId: ids.gmMappingId };
  await r.ok('v2_create_report_mapping', link);
  await r.bad('v2_create_report_mapping', { reportId, mappingId: UNKNOWN }, NOT_FOUND);
  await r.ok('v2_list_report_mappings', { reportId });
  await r.bad('v2_list_report_mappings', { reportId: UNKNOWN }, NOT_FOUND);
  await odata(r, reportId, 'v2_', false);

  const key = { displayName: 'Power BI', reportId, expiresAt: inDays(30) };
  const apiKeyId = (await r.ok('create_api_key', key)).key.id;
  await r.bad('create_api_key', { ...key, reportId: UNKNOWN }, NOT_FOUND);
  await r.ok('get_api_key', { apiKeyId });
  await r.bad('get_api_key', { apiKeyId: UNKNOWN }, NOT_FOUND);
  await r.ok('list_api_keys', { reportId });
  await r.bad('list_api_keys', { top: 0 }, INVALID);
  await r.ok('update_api_key', { apiKeyId, displayName: 'Excel' });
  await r.bad('update_api_key', { apiKeyId: UNKNOWN, displayName: 'x' }, NOT_FOUND);
  await r.ok('revoke_api_key', { apiKeyId });
  await r.bad('revoke_api_key', { apiKeyId }, NOT_FOUND);
  return { ...ids, v2ReportId: reportId };
}

/** Each delete once for real, then again on the id it just deleted (which must now be unknown). */
async function deletes(r, ids) {
  const twice = async (name, args) => {
    await r.ok(name, args);
    await r.bad(name, args, NOT_FOUND);
  };
  const gid = { imodelId: ids.imodelId, mappingId: ids.mappingId, groupId: ids.groupId };
  const tid = { aggregationTableSetId: ids.setId, aggregationTableId: ids.tableId };
  await twice('v2_delete_report_mapping', { reportId: ids.v2ReportId, mappingId: ids.gmMappingId });
  await twice('v2_delete_report', { reportId: ids.v2ReportId });
  await twice('gm_delete_property', { mappingId: ids.gmMappingId, groupId: ids.gmGroupId, propertyId: ids.gmPropertyId });
  await twice('gm_delete_group', { mappingId: ids.gmMappingId, groupId: ids.gmGroupId });
  await twice('gm_delete_mapping', { mappingId: ids.gmMappingId });
  await twice('delete_report_aggregation', { reportId: ids.reportId, aggregationTableSetId: ids.setId });
  await twice('delete_report_mapping', { reportId: ids.reportId, mappingId: ids.mappingId });
  await twice('delete_report', { reportId: ids.reportId });
  await twice('delete_aggregation_property', { ...tid, aggregationPropertyId: ids.propId });
  await twice('delete_aggregation_table', tid);
  await twice('delete_aggregation_table_set', { aggregationTableSetId: ids.setId });
  await twice('delete_custom_calculation', { ...gid, customCalculationId: ids.calcId });
  await twice('delete_calculated_property', { ...gid, propertyId: ids.volume });
  await twice('delete_group_property', { ...gid, propertyId: ids.propertyId });
  await twice('delete_group', gid);
  await twice('delete_mapping', { imodelId: ids.imodelId, mappingId: ids.mappingId });
}

/** Run the whole walk on a connected Recorder; a ScenarioStop ends it early (the summary names what was missed). */
export async function runScenario(r) {
  let ids = await context(r);
  await imodelQuery(r, ids);
  ids = await mappingAndGroup(r, ids);
  ids = await properties(r, ids);
  await extraction(r, ids);
  ids = await aggregations(r, ids);
  ids = await reports(r, ids);
  ids = await groupingMapping(r, ids);
  ids = await reportingV2(r, ids);
  await deletes(r, ids);
}
